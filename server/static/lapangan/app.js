// Lapangan: the enumerators' offline app. Log in once online, pull the families, visit them
// with no network, sync when a signal comes back. See docs/lapangan.md.
import {
  currentUser, openUserDB, outbox, setCurrentUser, unsent, wipeUser,
} from "./store.js";
import {AuthExpired, HttpError, login, logout, OfflineError, syncAll} from "./sync.js";
import {append, clear, h, label, mask, megabytes, when} from "./ui.js";
import {openVisit, startVisit, visitTitle} from "./visit.js";

const view = document.getElementById("view");
const net = document.getElementById("net");

export const app = {
  db: null,
  user: null,
  session: null,
  syncing: false,
  progress: null,
  lastError: null,
  storage: null,
  failures: 0,
  timer: null,
};
window.lapangan = app;  // for the browser tests and for debugging on a phone

// --------------------------------------------------------------------------- start

async function start() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/lapangan/sw.js", {scope: "/lapangan/"})
      .then(() => navigator.serviceWorker.ready)
      .then(() => { app.swReady = true; })
      .catch((exc) => { app.swError = String(exc); });
  }
  showNet();
  window.addEventListener("online", () => { showNet(); sync("online"); });
  window.addEventListener("offline", showNet);
  if (navigator.connection && navigator.connection.addEventListener) {
    // Held photos go as soon as the phone reaches Wi-Fi.
    navigator.connection.addEventListener("change", () => sync("connection"));
  }
  window.addEventListener("hashchange", route);
  const username = currentUser();
  if (username) {
    app.user = username;
    app.db = await openUserDB(username);
    app.session = await app.db.get("meta", "session");
  }
  await route();
  if (app.session && !app.session.expired) sync("open");
  // A timer while the app is open (every 5 minutes); failures back off on their own.
  setInterval(() => { if (!app.timer) sync("timer"); }, 5 * 60 * 1000);
  app.ready = true;
}

function showNet() {
  net.textContent = navigator.onLine ? "Daring" : "Luring";
  net.className = "net " + (navigator.onLine ? "on" : "off");
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const hash = location.hash || "#/";
  if (!app.db || !app.session || app.session.expired) return renderLogin();
  const [, kind, id] = hash.split("/");
  try {
    if (kind === "keluarga" && id) return await renderFamily(decodeURIComponent(id));
    if (kind === "kunjungan" && id) {
      currentView = "visit";  // a sync finishing now must not redraw the page under a visit
      return await openVisit(app, view, decodeURIComponent(id), {go, sync, current: turn()});
    }
    return await renderHome();
  } catch (exc) {
    clear(view).append(h("p", {class: "error", role: "alert"}, "Terjadi kesalahan: " + exc));
    throw exc;
  }
}

// --------------------------------------------------------------------------- login

function renderLogin() {
  currentView = "login";
  turn();
  const expired = app.session && app.session.expired;
  clear(view);
  const message = h("p", {class: "error", role: "alert", hidden: true});
  const username = h("input", {id: "username", name: "username", autocomplete: "username",
    autocapitalize: "none", required: true, value: app.user || "", readonly: expired});
  const password = h("input", {id: "password", name: "password", type: "password",
    autocomplete: "current-password", required: true});
  const button = h("button", {type: "submit", class: "primary"}, "Masuk");
  const form = h("form", {class: "card", onsubmit: async (event) => {
    event.preventDefault();
    message.hidden = true;
    button.disabled = true;
    try {
      await doLogin(username.value.trim(), password.value);
    } catch (exc) {
      message.hidden = false;
      message.textContent = exc instanceof OfflineError
        ? "Tidak ada sambungan ke server. Masuk pertama kali harus daring."
        : exc instanceof HttpError && exc.status === 401
          ? "Nama pengguna atau kata sandi salah."
          : exc instanceof HttpError && exc.status === 429
            ? "Terlalu banyak percobaan. Tunggu sebentar, lalu coba lagi."
            : "Gagal masuk: " + (exc.message || exc);
      button.disabled = false;
    }
  }},
  h("h1", {}, expired ? "Sesi berakhir" : "Masuk"),
  expired ? h("p", {}, "Masukkan kata sandi lagi. Draf dan kunjungan yang belum terkirim " +
    "tetap tersimpan di ponsel ini.") : h("p", {}, "Masuk sekali saat ada sinyal; setelah " +
    "itu aplikasi bekerja tanpa sinyal."),
  h("label", {for: "username"}, "Nama pengguna"), username,
  h("label", {for: "password"}, "Kata sandi"), password,
  message, button);
  view.append(form);
  if (expired) {
    view.append(h("button", {type: "button", class: "link", onclick: () => askLogout()},
      "Ganti pengguna (keluar)"));
  }
  (expired ? password : username).focus();
}

async function doLogin(username, password) {
  if (app.user && app.user !== username) {
    // Another user's data is still on this phone (their session ended): never mix them.
    throw new Error(`data milik ${app.user} masih ada di ponsel ini; keluar dulu`);
  }
  const session = await login(username, password);
  if (session.user.role !== "enumerator") {
    await logout(session);
    throw new Error("aplikasi ini untuk pencacah; pengawas memakai halaman /review");
  }
  setCurrentUser(username);
  app.user = username;
  app.db = app.db || await openUserDB(username);
  await app.db.put("meta", session, "session");
  app.session = session;
  await checkStorage(true);
  go("#/");
  await sync("login");
}

async function checkStorage(ask = false) {
  const info = {persisted: null, usage: null, quota: null};
  if (navigator.storage) {
    try {
      info.persisted = ask && navigator.storage.persist ? await navigator.storage.persist()
        : await navigator.storage.persisted();
    } catch {
      info.persisted = false;
    }
    try {
      const estimate = await navigator.storage.estimate();
      info.usage = estimate.usage;
      info.quota = estimate.quota;
    } catch {
      // unknown
    }
  }
  app.storage = info;
  if (app.db) await app.db.put("meta", info.persisted, "persisted");
  return info;
}

async function askLogout() {
  const left = app.db ? await unsent(app.db) : [];
  if (left.length) {
    const ok = confirm(`${left.length} kunjungan belum terkirim ke server dan akan HILANG ` +
      "bila Anda keluar. Tetap keluar?");
    if (!ok) {
      flash(`Tidak keluar: ${left.length} kunjungan belum terkirim. Sinkronkan dulu.`);
      return false;
    }
  }
  await logout(app.session);
  await wipeUser(app.db, app.user);
  Object.assign(app, {db: null, user: null, session: null, progress: null, storage: null});
  go("#/");
  return true;
}

function flash(text) {
  const box = document.getElementById("flash");
  if (box) {
    box.textContent = text;
    box.hidden = false;
  }
}

// --------------------------------------------------------------------------- sync

function progressText(p) {
  if (!p) return "";
  if (p.phase === "pull") return "Mengunduh data…";
  const sent = `${p.visitsDone} dari ${p.visitsTotal} kunjungan terkirim`;
  const photos = `${p.photosLeft} foto tersisa` + (p.held ? " (ditahan sampai ada Wi-Fi)" : "");
  if (p.phase === "done") {
    if (p.held && p.photosLeft) return `Selesai: ${sent}, ${photos}.`;
    return p.visitsTotal ? `Selesai: ${sent}.` : "Selesai: data terbaru sudah diunduh.";
  }
  return `${sent}, ${photos}`;
}

/** Sync now, unless a sync is running in this or another tab (a Web Lock across tabs). */
export async function sync(why = "button") {
  if (!app.db || !app.session || app.session.expired) return "no-session";
  if (app.syncing) return "busy";
  const run = async () => {
    app.syncing = true;
    app.lastError = null;
    renderSync();
    try {
      const wifiOnly = Boolean(await app.db.get("meta", "wifi_only"));
      const type = navigator.connection && navigator.connection.type;
      await syncAll(app.db, app.session, (p) => { app.progress = p; renderSync(); },
                    {holdPhotos: wifiOnly && Boolean(type) && type !== "wifi"});
      app.failures = 0;
      clearTimeout(app.timer);
      app.timer = null;
      app.lastSync = await app.db.get("meta", "last_sync");
      return "done";
    } catch (exc) {
      if (exc instanceof AuthExpired) {
        app.session.expired = true;
        await app.db.put("meta", app.session, "session");
        route();
        return "expired";
      }
      app.lastError = exc instanceof OfflineError
        ? "Tidak ada sambungan; dicoba lagi otomatis." : "Sinkronisasi gagal: " + exc.message;
      // Back off from 1 s to 5 minutes, with jitter, until a sync gets through.
      const delay = Math.min(300, 2 ** app.failures) * (0.5 + Math.random() / 2) * 1000;
      app.failures += 1;
      clearTimeout(app.timer);
      app.timer = setTimeout(() => { app.timer = null; sync("retry"); }, delay);
      return "failed";
    } finally {
      app.syncing = false;
      renderSync();
      if (why !== "timer" && currentView === "home" && app.session && !app.session.expired) {
        renderHome();
      }
    }
  };
  if (navigator.locks) {
    return navigator.locks.request("lapangan-sync", {ifAvailable: true},
      (lock) => (lock ? run() : "busy"));
  }
  return run();
}
app.sync = sync;
app.stateText = (v) => stateText(v);

function renderSync() {
  const box = document.getElementById("sync-status");
  if (!box) return;
  clear(box);
  append(box, [
    h("p", {id: "sync-progress"}, app.syncing ? progressText(app.progress)
      : app.progress ? progressText(app.progress) : ""),
    h("p", {id: "last-sync"}, "Sinkron terakhir: " + when(app.lastSync)),
    app.lastError ? h("p", {class: "error", role: "alert"}, app.lastError) : null,
  ]);
  const button = document.getElementById("sync-button");
  if (button) button.disabled = app.syncing;
}

// --------------------------------------------------------------------------- home

let currentView = "";
// Each drawing of the page takes a turn. Drawings read IndexedDB before they clear the page, so
// one begun earlier (a sync's redraw of the list) can finish after a newer one (the family the
// enumerator just opened): it must then draw nothing.
let renders = 0;
function turn() {
  const mine = ++renders;
  return () => mine === renders;
}

function familyName(record) {
  const members = record && record.anggota || [];
  const head = members.find((m) => m.hubungan === 1) || members[0];
  return head ? head.nama : "(tanpa nama)";
}

async function families() {
  const [assignments, households, visits] = await Promise.all([
    app.db.getAll("assignments"), app.db.getAll("households"), app.db.getAll("visits")]);
  const byId = new Map(households.map((x) => [x.household_id, x]));
  const drafts = new Map();
  for (const v of visits) {
    if (v.state === "draft") drafts.set(v.household_id, v);
  }
  const list = [];
  for (const a of assignments) {
    if (!["pending", "visited", "returned"].includes(a.status)) continue;
    const hh = byId.get(a.household_id);
    if (!hh) continue;
    const r = hh.record || {};
    list.push({id: a.household_id, assignment: a, household: hh, record: r,
               name: familyName(r), draft: drafts.get(a.household_id)});
  }
  list.sort((x, y) => (x.household.kode_kelurahan || "").localeCompare(y.household.kode_kelurahan || "")
    || String(x.record.rw || "").localeCompare(String(y.record.rw || ""))
    || String(x.record.rt || "").localeCompare(String(y.record.rt || ""))
    || x.name.localeCompare(y.name));
  return list;
}

function matches(item, q) {
  if (!q) return true;
  const r = item.record;
  const text = [item.name, r.alamat, ...(r.anggota || []).map((m) => m.nama)]
    .join(" ").toLowerCase();
  const digits = q.replace(/\D/g, "");
  return q.toLowerCase().split(/\s+/).every((w) => text.includes(w))
    || (digits.length >= 4 && String(r.no_kk || "").includes(digits));
}

const STATUS = {pending: "Belum dikunjungi", visited: "Sudah dikunjungi",
                returned: "Dikembalikan pengawas"};

function familyItem(item) {
  const r = item.record;
  const returned = item.assignment.status === "returned";
  return h("li", {class: "family" + (returned ? " returned" : "")},
    h("a", {href: "#/keluarga/" + encodeURIComponent(item.id), class: "row"},
      returned && item.assignment.note
        ? h("span", {class: "note"}, "Catatan pengawas: " + item.assignment.note) : null,
      h("strong", {class: "name"}, item.name),
      h("span", {}, r.alamat || ""),
      h("span", {class: "muted"}, `RT ${r.rt || "-"} / RW ${r.rw || "-"} · KK ${mask(r.no_kk)}`),
      h("span", {class: "badges"},
        h("span", {class: "badge " + item.assignment.status}, STATUS[item.assignment.status]
          || item.assignment.status),
        item.draft ? h("span", {class: "badge draft"}, "Draf") : null)));
}

const STATE_TEXT = {
  draft: "Draf", pending: "Menunggu dikirim", sent: "Sedang dikirim",
  waiting_photos: "Menunggu foto", accepted: "Terkirim", duplicate: "Terkirim",
  rejected: "Ditolak server: perlu diperbaiki", uuid_reused: "Bentrok di server: hubungi pengawas",
};

export function stateText(v) {
  if (v.moved) return "Keluarga dipindahkan ke petugas lain: tidak bisa dikirim, hubungi pengawas";
  if (v.blocked) return "Foto ditolak server: ambil ulang foto";
  return STATE_TEXT[v.state] || v.state;
}

async function renderHome() {
  currentView = "home";
  const current = turn();
  const [list, visits, queue] = await Promise.all([families(), app.db.getAll("visits"),
                                                    outbox(app.db)]);
  app.lastSync = await app.db.get("meta", "last_sync");
  if (!current()) return;
  const wifiOnly = await app.db.get("meta", "wifi_only");
  if (!app.storage) await checkStorage(false);
  const s = app.storage;
  clear(view);
  const attention = visits.filter((v) => v.moved || v.blocked
    || ["rejected", "uuid_reused"].includes(v.state));
  const search = h("input", {id: "search", type: "search", placeholder: "Nama, alamat atau no. KK",
                             "aria-label": "Cari keluarga", autocomplete: "off"});
  const ul = h("ul", {class: "families", id: "families"});
  const count = h("p", {class: "muted", id: "family-count", "aria-live": "polite"});
  const fill = () => {
    const q = search.value.trim();
    const shown = list.filter((item) => matches(item, q));
    clear(ul);
    let group = null;
    for (const item of shown) {
      const key = item.household.kode_kelurahan;
      if (key !== group) {
        group = key;
        ul.append(h("li", {class: "group"}, "Kelurahan " + key));
      }
      ul.append(familyItem(item));
    }
    count.textContent = `${shown.length} dari ${list.length} keluarga`;
  };
  search.value = app.query || "";  // a redraw after a sync keeps what was typed
  search.addEventListener("input", () => { app.query = search.value; fill(); });
  append(view, [
    h("p", {id: "flash", class: "flash", role: "status", hidden: true}),
    h("section", {class: "card"},
      h("p", {}, "Masuk sebagai ", h("strong", {id: "who"}, app.user)),
      h("p", {id: "storage"}, s.persisted ? "Penyimpanan: permanen (tidak dihapus browser)."
        : "Penyimpanan: TIDAK permanen. Browser bisa menghapus data bila ruang penuh; " +
          "sinkronkan sesering mungkin.",
        " ", `Terpakai ${megabytes(s.usage)} dari ${megabytes(s.quota)}.`),
      !s.persisted && queue.length ? h("p", {class: "error", id: "urge"},
        `${queue.length} kunjungan belum terkirim: sinkronkan segera.`) : null,
      h("div", {id: "sync-status", "aria-live": "polite"}),
      navigator.connection && "type" in navigator.connection ? h("label", {class: "choice"},
        h("input", {type: "checkbox", id: "wifi-only", checked: Boolean(wifiOnly),
          onchange: async (e) => {
            await app.db.put("meta", e.target.checked, "wifi_only");
            if (!e.target.checked) sync("wifi-setting");
          }}), "Kirim foto hanya lewat Wi-Fi") : null,
      h("button", {id: "sync-button", class: "primary", type: "button",
                   onclick: () => sync("button")}, "Sinkronkan")),
    attention.length ? h("section", {class: "card attention"},
      h("h2", {}, "Perlu perhatian"),
      h("ul", {class: "plain"}, attention.map((v) => h("li", {},
        h("a", {href: "#/kunjungan/" + v.uuid, class: "row"}, visitTitle(app, v), " — ",
          stateText(v)))))) : null,
    h("h1", {}, "Keluarga"),
    search, count, ul,
    h("button", {type: "button", class: "secondary", id: "logout",
                 onclick: () => askLogout()}, "Keluar"),
  ]);
  fill();
  renderSync();
}

// --------------------------------------------------------------------------- family

async function renderFamily(id) {
  currentView = "family";
  const current = turn();
  const [assignments, hh, visits] = await Promise.all([
    app.db.getAll("assignments"), app.db.get("households", id),
    app.db.getAllFromIndex("visits", "household_id", id)]);
  if (!current()) return;
  const a = assignments.find((x) => x.household_id === id);
  clear(view);
  view.append(h("p", {}, h("a", {href: "#/", class: "back"}, "← Daftar keluarga")));
  if (!hh || !a) {
    view.append(h("p", {class: "error"}, "Keluarga ini tidak lagi ditugaskan kepada Anda. " +
      "Hubungi pengawas."));
  }
  const r = hh ? hh.record : {};
  if (a && a.status === "returned") {
    view.append(h("section", {class: "card returned", id: "supervisor-note"},
      h("h2", {}, "Dikembalikan pengawas"),
      h("p", {}, a.note || "(tanpa catatan)"),
      h("p", {class: "muted"}, "Kunjungi lagi: jawaban baru dikirim sebagai kunjungan baru.")));
  }
  if (hh) {
    const geo = typeof r.lat === "number" && typeof r.lon === "number"
      ? `geo:${r.lat},${r.lon}?q=${r.lat},${r.lon}` : null;
    view.append(h("section", {class: "card"},
      h("h1", {}, familyName(r)),
      h("p", {}, r.alamat || ""),
      h("p", {class: "muted"}, `RT ${r.rt || "-"} / RW ${r.rw || "-"} · Kelurahan ` +
        `${hh.kode_kelurahan}`),
      h("p", {class: "muted"}, `KK ${mask(r.no_kk)} · ${(r.anggota || []).length} anggota`),
      geo ? h("a", {href: geo, class: "button secondary", id: "geo-link"},
        "Buka lokasi di peta") : h("p", {class: "muted"}, "Titik lokasi belum terdaftar.")));
  }
  const draft = visits.find((v) => v.state === "draft" || (v.state === "rejected" && !v.moved));
  if (hh && a) {
    view.append(draft
      ? h("a", {href: "#/kunjungan/" + draft.uuid, class: "button primary", id: "start"},
        draft.state === "rejected" ? "Perbaiki kunjungan" : "Lanjutkan draf")
      : h("button", {type: "button", class: "primary", id: "start", onclick: async () => {
        const v = await startVisit(app, id);
        go("#/kunjungan/" + v.uuid);
      }}, "Mulai kunjungan"));
  }
  if (visits.length) {
    view.append(h("h2", {}, "Kunjungan di ponsel ini"),
      h("ul", {class: "plain"}, visits.map((v) => h("li", {},
        h("a", {href: "#/kunjungan/" + v.uuid, class: "row"},
          when(v.started_at), " — ", stateText(v))))));
  }
}

start().catch((exc) => {
  clear(view).append(h("p", {class: "error", role: "alert"}, "Aplikasi gagal dimulai: " + exc));
  app.startError = String(exc);
});

export {label};
