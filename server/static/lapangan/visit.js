// The visit form, rendered from the pulled form definition. Every answer is written to
// IndexedDB as it is given (the draft survives a reload or a killed tab); relevance,
// validation and prefill come from the form engine (forms.js, the server's rules in
// JavaScript); GPS with live accuracy; photos resized, hashed and kept as Blobs.
import {preparePhoto} from "./photo.js";
import {evictSentPhotos} from "./sync.js";
import {localTime, now} from "./store.js";
import {append, clear, h, label, mask, when} from "./ui.js";

let enginePromise = null;

/** The form engine, forms.js (loaded once; null when it cannot be loaded). */
export function loadEngine() {
  enginePromise = enginePromise || import("./forms.js").catch(() => null);
  return enginePromise;
}

export const GPS_WARN_M = 50;

// --------------------------------------------------------------------------- paths

function pathText(path) {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : (out ? "." : "") + part;
  }
  return out;
}

function getAt(obj, path) {
  let cur = obj;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[part];
  }
  return cur;
}

function setAt(obj, path, value) {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i];
    if (cur[part] === null || typeof cur[part] !== "object") {
      cur[part] = typeof path[i + 1] === "number" ? [] : {};
    }
    cur = cur[part];
  }
  const last = path[path.length - 1];
  if (value === undefined || value === "" || value === null) delete cur[last];
  else cur[last] = value;
}

// --------------------------------------------------------------------------- drafts

async function newestForm(db) {
  const forms = (await db.getAll("forms")).filter((f) => f.definition);
  forms.sort((a, b) => b.version - a.version);
  return forms[0] || null;
}

/** A new visit of a family: a new uuid, the record's current base_version, prefilled. */
export async function startVisit(app, householdId) {
  const engine = await loadEngine();
  const [form, hh] = await Promise.all([newestForm(app.db), app.db.get("households", householdId)]);
  if (!form) throw new Error("formulir belum diunduh; sinkronkan dulu");
  const answers = engine ? engine.prefill(form.definition, hh.record) : {};
  // Entries of a repeat that came from the record cannot be removed (mark them died or
  // moved instead); members added during the visit can.
  const prefilled = {};
  for (const [key, value] of Object.entries(answers)) {
    if (Array.isArray(value)) prefilled[key] = value.length;
  }
  const visit = {
    uuid: crypto.randomUUID(), household_id: householdId, form_key: form.id,
    base_version: hh.base_version, state: "draft", started_at: localTime(),
    answers, photos: {}, prefilled, created_at: now(), updated_at: now(),
  };
  await app.db.put("visits", visit);
  return visit;
}

export function visitTitle(app, v) {
  return `Kunjungan ${v.household_id} (${when(v.started_at)})`;
}

/** The visit in the push format, exactly as it will be sent (and resent). */
export function buildVisit(draft, form) {
  const location = draft.location || null;
  return {
    uuid: draft.uuid,
    form_id: form.form_id,
    form_version: form.version,
    household_id: draft.household_id,
    base_version: draft.base_version,
    branch_id: draft.uuid,
    trunk_version: draft.base_version,
    started_at: draft.started_at,
    ended_at: localTime(),
    location,
    answers: draft.answers,
    photos: Object.entries(draft.photos || {}).map(([field, p]) => ({
      field, sha256: p.sha256, filename: p.filename, taken_at: p.taken_at,
      ...(p.location ? {location: p.location} : {}),
    })),
  };
}

// --------------------------------------------------------------------------- the page

function choicesOf(definition, field) {
  const c = field.choices;
  if (Array.isArray(c)) return c;
  return (definition.choices || {})[c] || [];
}

export async function openVisit(app, view, uuid, {go, sync, current = () => true}) {
  const draft = await app.db.get("visits", uuid);
  if (!current()) return;  // a newer page was drawn while this one read
  clear(view);
  view.append(h("p", {}, h("a", {href: draft ? "#/keluarga/" + encodeURIComponent(
    draft.household_id) : "#/", class: "back"}, "← Kembali")));
  if (!draft) {
    view.append(h("p", {class: "error"}, "Kunjungan tidak ditemukan di ponsel ini."));
    return;
  }
  const form = await app.db.get("forms", draft.form_key);
  const hh = await app.db.get("households", draft.household_id);
  const engine = await loadEngine();
  if (!current()) return;
  if (!form || !form.definition) {
    view.append(h("p", {class: "error"}, "Formulir kunjungan ini tidak ada di ponsel."));
    return;
  }
  const editable = (draft.state === "draft" || draft.state === "rejected") && !draft.moved;
  new VisitPage(app, view, draft, form, hh, engine, {go, sync, editable}).render();
}

class VisitPage {
  constructor(app, view, draft, form, hh, engine, opts) {
    Object.assign(this, {app, view, draft, form, hh, engine, ...opts});
    this.def = form.definition;
    this.nodes = [];  // {field, path, el, item} of every rendered question
    this.watch = null;
  }

  async save() {
    this.draft.updated_at = now();
    if (this.draft.state === "rejected") this.draft.edited = true;
    await this.app.db.put("visits", this.draft);
  }

  /** Relevance of every question reached, from the engine ({"answers.x": bool}). */
  relevance() {
    if (!this.engine) return {};
    try {
      return this.engine.check(this.def, buildVisit(this.draft, this.form)).relevance || {};
    } catch {
      return {};
    }
  }

  refresh() {
    const relevance = this.relevance();
    // Parents come before their children in this.nodes, so a child sees its parent's state.
    for (const node of this.nodes) {
      if (!node.el) continue;
      node.el.hidden = relevance["answers." + pathText(node.path)] === false
        || node.parentHidden();
    }
  }

  render() {
    const {view, draft, hh} = this;
    const r = hh ? hh.record : {};
    if (draft.moved) {
      view.append(h("p", {class: "error", role: "alert", id: "moved"},
        "Keluarga ini sudah dipindahkan ke petugas lain. Draf ini disimpan tetapi tidak bisa " +
        "dikirim. Hubungi pengawas Anda."));
    }
    if (draft.state === "uuid_reused") {
      view.append(h("p", {class: "error", role: "alert"},
        "Server sudah menyimpan kunjungan lain dengan kode yang sama. Kunjungan ini disimpan " +
        "apa adanya dan tidak ditimpa. Laporkan ke pengawas (kode " + draft.uuid + ")."));
    }
    view.append(h("h1", {}, label(this.def.title)),
      h("p", {class: "muted"}, `${r.alamat || ""} · KK ${mask(r.no_kk)} · mulai ` +
        when(draft.started_at)));
    if (!this.editable) {
      view.append(h("p", {class: "card", id: "visit-state"}, "Status: " +
        (this.app.stateText ? this.app.stateText(draft) : draft.state)));
    }
    this.summary = h("div", {id: "error-summary", class: "summary", role: "alert", hidden: true,
                             tabindex: "-1"});
    view.append(this.summary);
    this.formEl = h("form", {id: "visit-form", class: "visit", novalidate: true,
                             onsubmit: (e) => { e.preventDefault(); this.finish(); }});
    view.append(this.formEl);
    this.renderForm();
    if (this.editable) {
      view.append(h("div", {class: "actions"},
        h("button", {type: "submit", form: "visit-form", class: "primary", id: "finish"},
          "Simpan & kirim"),
        h("a", {href: "#/", class: "button secondary", id: "later"}, "Simpan sebagai draf")));
    }
    if (draft.state === "rejected" && draft.errors && draft.errors.length) {
      this.showErrors(draft.errors, "Server menolak kunjungan ini. Perbaiki isian berikut, " +
        "lalu kirim lagi:");
    }
  }

  renderForm() {
    const y = window.scrollY;
    this.stopGps();
    clear(this.formEl);
    this.nodes = [];
    this.renderFields(this.def.fields, this.formEl, [], null, () => false);
    this.refresh();
    if (!this.editable) {
      for (const el of this.formEl.querySelectorAll("input, select, textarea, button")) {
        el.disabled = true;
      }
    }
    window.scrollTo(0, y);
  }

  renderFields(fields, container, prefix, itemPath, parentHidden) {
    for (const field of fields) {
      const path = [...prefix, field.name];
      // The node goes in before its children, so that refresh() meets parents first.
      const node = {field, path, el: null, itemPath, parentHidden};
      this.nodes.push(node);
      node.el = this.renderField(field, path, itemPath, parentHidden);
      if (node.el) container.append(node.el);
    }
  }

  fieldBox(field, path, ...content) {
    const id = "f-" + pathText(path).replace(/[^A-Za-z0-9_-]/g, "_");
    return h("div", {class: "field", "data-path": pathText(path), id},
      ...content,
      field.hint ? h("p", {class: "hint"}, label(field.hint)) : null,
      h("p", {class: "field-error", hidden: true}));
  }

  setAnswer(path, value) {
    setAt(this.draft.answers, path, value);
    this.save();
    this.refresh();
  }

  renderField(field, path, itemPath, parentHidden) {
    const answers = this.draft.answers;
    const current = getAt(answers, path);
    const id = "q-" + pathText(path).replace(/[^A-Za-z0-9_-]/g, "_");
    const title = label(field.label) + (field.required ? " *" : "");
    const t = field.type;
    if (t === "group") {
      const box = h("fieldset", {class: "group", "data-path": pathText(path)},
        h("legend", {}, label(field.label)));
      const self = () => box.hidden || parentHidden();
      this.renderFields(field.fields || [], box, path, itemPath, self);
      return box;
    }
    if (t === "repeat") return this.renderRepeat(field, path, parentHidden);
    if (t === "note") return h("p", {class: "note-field"}, label(field.label));
    if (t === "geopoint") return this.renderGeo(field, path, title);
    if (t === "photo") return this.renderPhoto(field, path, title);
    if (t === "boolean") {
      const name = id;
      const opts = [[true, "Ya"], [false, "Tidak"]].map(([value, text], i) => h("label",
        {class: "choice"}, h("input", {type: "radio", name, id: `${id}-${i}`,
          checked: current === value, onchange: () => this.setAnswer(path, value)}), text));
      return this.fieldBox(field, path, h("fieldset", {class: "choices"},
        h("legend", {}, title), ...opts));
    }
    if (t === "select_one" || t === "select_multiple") {
      const choices = choicesOf(this.def, field);
      if (t === "select_multiple") {
        const chosen = Array.isArray(current) ? current : [];
        return this.fieldBox(field, path, h("fieldset", {class: "choices"},
          h("legend", {}, title), choices.map((c, i) => h("label", {class: "choice"},
            h("input", {type: "checkbox", id: `${id}-${i}`, checked: chosen.includes(c.value),
              onchange: (e) => {
                const now = new Set(Array.isArray(getAt(answers, path)) ? getAt(answers, path)
                  : []);
                if (e.target.checked) now.add(c.value); else now.delete(c.value);
                this.setAnswer(path, choices.map((x) => x.value).filter((v) => now.has(v)));
              }}), label(c.label)))));
      }
      if (choices.length <= 6) {
        return this.fieldBox(field, path, h("fieldset", {class: "choices"},
          h("legend", {}, title), choices.map((c, i) => h("label", {class: "choice"},
            h("input", {type: "radio", name: id, id: `${id}-${i}`, value: String(i),
              checked: current === c.value, onchange: () => this.setAnswer(path, c.value)}),
            label(c.label)))));
      }
      const select = h("select", {id, onchange: (e) => this.setAnswer(path,
        e.target.value === "" ? undefined : choices[Number(e.target.value)].value)},
      h("option", {value: ""}, "— pilih —"),
      choices.map((c, i) => h("option", {value: String(i), selected: current === c.value},
        label(c.label))));
      return this.fieldBox(field, path, h("label", {for: id}, title), select);
    }
    const attrs = {id, name: id, value: current === undefined ? "" : String(current)};
    let parse = (v) => v;
    if (t === "integer") {
      Object.assign(attrs, {type: "number", inputmode: "numeric", step: "1"});
      parse = (v) => (v === "" ? undefined : Number.isInteger(Number(v)) ? Number(v) : v);
    } else if (t === "decimal") {
      Object.assign(attrs, {type: "number", inputmode: "decimal", step: "any"});
      parse = (v) => (v === "" ? undefined : Number.isFinite(Number(v)) ? Number(v) : v);
    } else if (t === "date") {
      attrs.type = "date";
    } else if (t === "datetime") {
      attrs.type = "datetime-local";
      parse = (v) => (v ? localTime(new Date(v)) : undefined);
      attrs.value = current ? String(current).slice(0, 16) : "";
    } else {
      attrs.type = "text";
      if (field.pattern && /^\[0-9\]/.test(field.pattern)) attrs.inputmode = "numeric";
      if (field.max_length) attrs.maxlength = field.max_length;
    }
    const tag = t === "text" && (field.max_length || 0) > 200 ? "textarea" : "input";
    if (tag === "textarea") delete attrs.type;
    const input = h(tag, {...attrs, oninput: (e) => this.setAnswer(path, parse(e.target.value))});
    if (tag === "textarea") input.value = attrs.value;
    return this.fieldBox(field, path, h("label", {for: id}, title), input);
  }

  renderRepeat(field, path, parentHidden) {
    const entries = getAt(this.draft.answers, path) || [];
    const box = h("fieldset", {class: "repeat", "data-path": pathText(path),
                               id: "f-" + pathText(path)},
    h("legend", {}, label(field.label)));
    const self = () => box.hidden || parentHidden();
    entries.forEach((entry, i) => {
      const itemPath = [...path, i];
      const name = entry && entry.nama ? entry.nama : "(baru)";
      const card = h("div", {class: "member", "data-index": String(i)},
        h("h3", {}, `${label(field.label).replace(/ keluarga$/, "")} ${i + 1}: ${name}`));
      this.renderFields(field.fields || [], card, itemPath, itemPath, self);
      const prefilled = (this.draft.prefilled || {})[pathText(path)] || 0;
      if (i >= prefilled && this.editable) {
        card.append(h("button", {type: "button", class: "secondary remove", onclick: () => {
          const list = getAt(this.draft.answers, path);
          list.splice(i, 1);
          this.save();
          this.renderForm();
        }}, "Hapus isian ini"));
      }
      box.append(card);
    });
    box.append(h("p", {class: "field-error", hidden: true}));
    if (!field.max_count || entries.length < field.max_count) {
      box.append(h("button", {type: "button", class: "secondary", id: "add-" + field.name,
        onclick: () => {
          const list = getAt(this.draft.answers, path) || [];
          const fresh = {};
          const status = (field.fields || []).find((f) => f.name === "status_keberadaan");
          if (status) fresh.status_keberadaan = 5;  // a new member of the family
          list.push(fresh);
          setAt(this.draft.answers, path, list);
          this.save();
          this.renderForm();
          const cards = this.formEl.querySelectorAll(`[data-path="${pathText(path)}"] .member`);
          if (cards.length) cards[cards.length - 1].scrollIntoView();
        }}, "+ Tambah " + label(field.label).toLowerCase().replace(/ keluarga$/, "")));
    }
    return box;
  }

  // ------------------------------------------------------------------ GPS

  renderGeo(field, path, title) {
    const value = getAt(this.draft.answers, path);
    const live = h("p", {class: "gps-live", id: "gps-live", "aria-live": "polite"});
    const warn = h("p", {class: "warning", id: "gps-warning", hidden: true},
      `Akurasi lebih dari ${GPS_WARN_M} m. Tunggu sebentar di tempat terbuka, lalu ambil lagi.`);
    const show = (v) => {
      live.textContent = v ? `Titik: ${v.lat.toFixed(5)}, ${v.lon.toFixed(5)} · akurasi ` +
        `${Math.round(v.accuracy_m)} m` : "Belum ada titik.";
      warn.hidden = !(v && v.accuracy_m > GPS_WARN_M);
    };
    show(value);
    const button = h("button", {type: "button", class: "secondary", id: "gps-button",
      onclick: () => (this.watch === null ? this.startGps(path, show, button) : this.stopGps())},
    value ? "Ambil titik lagi" : "Ambil titik GPS");
    this.gpsButton = button;
    return this.fieldBox(field, path, h("p", {class: "label"}, title), live, warn, button);
  }

  startGps(path, show, button) {
    if (!navigator.geolocation) {
      show(null);
      return;
    }
    button.textContent = "Berhenti mencari";
    let best = null;
    this.watch = navigator.geolocation.watchPosition((pos) => {
      const c = pos.coords;
      const point = {lat: c.latitude, lon: c.longitude, accuracy_m: Math.round(c.accuracy * 10) / 10};
      show(point);
      if (!best || point.accuracy_m <= best.accuracy_m) {
        best = point;
        this.draft.location = point;
        this.setAnswer(path, point);
      }
      if (point.accuracy_m <= 10) this.stopGps();
    }, (err) => {
      show(getAt(this.draft.answers, path));
      const live = document.getElementById("gps-live");
      if (live) live.textContent = "GPS gagal: " + (err.code === 1 ? "izin lokasi ditolak" : err.message);
      this.stopGps();
    }, {enableHighAccuracy: true, maximumAge: 0, timeout: 60000});
  }

  stopGps() {
    if (this.watch !== null) navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
    if (this.gpsButton) this.gpsButton.textContent = "Ambil titik lagi";
  }

  // ------------------------------------------------------------------ photos

  renderPhoto(field, path, title) {
    const key = pathText(path).replace(/\[\d+\]/g, (m) => m);  // the photo's field key
    const id = "q-" + key.replace(/[^A-Za-z0-9_-]/g, "_");
    const preview = h("div", {class: "preview"});
    const status = h("p", {class: "muted", "aria-live": "polite"});
    const showPhoto = async () => {
      clear(preview);
      const p = this.draft.photos[key];
      if (!p) {
        status.textContent = "Belum ada foto.";
        return;
      }
      const row = await this.app.db.get("photos", p.sha256);
      if (row && row.blob) {
        const url = URL.createObjectURL(row.blob);
        preview.append(h("img", {src: url, alt: "Pratinjau " + label(field.label),
                                 class: "thumb"}));
      }
      status.textContent = `Foto tersimpan (${Math.round((row ? row.size : 0) / 1024)} KB).`;
    };
    const input = h("input", {type: "file", accept: "image/*", capture: "environment", id,
                              class: "file", onchange: async (e) => {
      const file = e.target.files && e.target.files[0];
      if (!file) return;
      status.textContent = "Memproses foto…";
      try {
        // Resize and hash first, then one IndexedDB transaction for the Blob and the draft.
        const photo = await preparePhoto(file, this.draft.location || null);
        photo.taken_at = localTime();
        const entry = {sha256: photo.sha256, filename: photo.filename,
                       taken_at: photo.taken_at, location: photo.location};
        this.draft.photos[key] = entry;
        this.draft.updated_at = now();
        const keep = async () => {
          const tx = this.app.db.transaction(["photos", "visits"], "readwrite");
          const old = await tx.objectStore("photos").get(photo.sha256);
          if (!old) {
            await tx.objectStore("photos").put({...photo, state: "pending", created_at: now()});
          }
          await tx.objectStore("visits").put(this.draft);
          await tx.done;
        };
        try {
          await keep();
        } catch (exc) {
          if (!exc || exc.name !== "QuotaExceededError") throw exc;
          // Space runs short: the oldest sent photos go first, never a draft's or an unsent
          // visit's; then once more.
          await evictSentPhotos(this.app.db, photo.size * 4);
          await keep();
        }
        await showPhoto();
      } catch (exc) {
        status.textContent = "Foto gagal diproses: " + exc.message;
      }
      e.target.value = "";
    }});
    showPhoto();
    return this.fieldBox(field, path, h("p", {class: "label"}, title),
      h("label", {for: id, class: "button secondary photo-button"},
        this.draft.photos[key] ? "Ambil ulang foto" : "Ambil foto"), input, preview, status);
  }

  // ------------------------------------------------------------------ finishing

  labelOf(errorPath) {
    const p = errorPath.replace(/^answers\./, "");
    const node = this.nodes.find((n) => pathText(n.path) === p);
    return node ? label(node.field.label) : null;
  }

  showErrors(errors, heading) {
    for (const el of this.formEl.querySelectorAll(".field-error")) el.hidden = true;
    for (const el of this.formEl.querySelectorAll(".invalid")) el.classList.remove("invalid");
    clear(this.summary);
    if (!errors.length) {
      this.summary.hidden = true;
      return;
    }
    const items = errors.map((e) => {
      const p = (e.path || "").replace(/^answers\./, "");
      const box = this.formEl.querySelector(`[data-path="${CSS.escape(p)}"]`);
      const fieldLabel = this.labelOf(e.path || "");
      if (box) {
        box.classList.add("invalid");
        const slot = box.querySelector(":scope > .field-error");
        if (slot) {
          slot.hidden = false;
          slot.textContent = e.message;
        }
      }
      const text = (fieldLabel && !String(e.message).includes(fieldLabel)
        ? fieldLabel + ": " : "") + e.message;
      return h("li", {}, box && box.id ? h("a", {href: "#", onclick: (ev) => {
        ev.preventDefault();
        box.scrollIntoView();
      }}, text) : text);
    });
    append(this.summary, [h("p", {}, heading), h("ul", {}, items)]);
    this.summary.hidden = false;
    this.summary.focus();
  }

  async finish() {
    this.stopGps();
    const visit = buildVisit(this.draft, this.form);
    const errors = this.engine ? this.engine.validate(this.def, visit) : [];
    if (errors.length) {
      this.showErrors(errors, `Ada ${errors.length} isian yang perlu diperbaiki sebelum ` +
        "disimpan:");
      return;
    }
    this.draft.visit = visit;
    this.draft.ended_at = visit.ended_at;
    this.draft.state = "pending";
    this.draft.errors = [];
    this.draft.queued_at = now();
    await this.app.db.put("visits", this.draft);
    this.go("#/");
    this.sync("finish");
  }
}
