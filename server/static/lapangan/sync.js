// Talking to Tapak's JSON sync API (docs/contract.md), following sync/client.py:
// log in, pull from the cursor, photos by hash (HEAD, then PUT only the missing), push the
// outbox in batches whose batch_id stays the same across retries, and the five answers.
import {DONE_STATES, deviceId, localTime, now, OUTBOX_STATES} from "./store.js";

const API = "/api/v1";
const BATCH = 20;
const PULL_LIMIT = 500;

export class HttpError extends Error {
  constructor(status, code, message, details) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** No answer at all (offline, connection cut, 5xx, 429): try again later. */
export class OfflineError extends Error {}

/** The token is no longer valid: ask for the password again, keep every draft. */
export class AuthExpired extends Error {}

async function envelope(response) {
  try {
    const body = await response.json();
    const e = body && body.error;
    if (e) return new HttpError(response.status, e.code, e.message, e.details);
  } catch {
    // not JSON: fall through
  }
  return new HttpError(response.status, null, `HTTP ${response.status}`);
}

async function request(method, path, {token, json, body, headers = {}} = {}) {
  const init = {method, headers: {...headers}, cache: "no-store"};
  if (token) init.headers.Authorization = "Bearer " + token;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (exc) {
    throw new OfflineError(String(exc && exc.message || exc));
  }
  if (response.status >= 500 || response.status === 429) {
    throw new OfflineError(`HTTP ${response.status}`);
  }
  if (response.status === 401 && token) throw new AuthExpired("token");
  return response;
}

/** POST /auth/token, as sync/client.py logs in; the answer is kept as the session. */
export async function login(username, password) {
  const response = await request("POST", "/auth/token", {
    json: {username, password, device_id: deviceId()}});
  if (response.status !== 201) throw await envelope(response);
  const body = await response.json();
  return {token: body.token, expires_at: body.expires_at, user: body.user,
          device_id: deviceId()};
}

export async function logout(session) {
  if (!session || !session.token) return;
  try {
    await request("DELETE", "/auth/token", {token: session.token});
  } catch {
    // offline or already expired: the data is wiped anyway
  }
}

// --------------------------------------------------------------------------- pull

async function applyChange(tx, change) {
  const store = {assignment: "assignments", household: "households", form: "forms"}[change.type];
  if (!store) return;  // a type this app does not know yet
  const os = tx.objectStore(store);
  const data = change.data || {};
  if (change.op === "delete") {
    await os.delete(change.id);
    if (change.type === "assignment") {
      // The family was taken off this enumerator: its drafts stay, marked moved.
      const visits = tx.objectStore("visits");
      for (const v of await visits.index("household_id").getAll(data.household_id)) {
        if (v.state === "draft" || v.state === "rejected") {
          v.moved = true;
          await visits.put(v);
        }
      }
    }
    return;
  }
  if (change.type === "assignment") {
    await os.put({id: change.id, ...data, seq: change.seq});
    if (data.status !== "returned") {
      const visits = tx.objectStore("visits");
      for (const v of await visits.index("household_id").getAll(data.household_id)) {
        if (v.moved) {
          v.moved = false;
          await visits.put(v);
        }
      }
    }
  } else if (change.type === "household") {
    await os.put({household_id: change.id, base_version: data.base_version,
                  kode_kelurahan: data.kode_kelurahan, record: data.record, seq: change.seq});
  } else {
    const old = await os.get(change.id);
    await os.put({id: change.id, form_id: data.form_id, version: data.version,
                  title: data.title, hash: data.hash, seq: change.seq,
                  definition: old && old.hash === data.hash ? old.definition : null});
  }
}

export async function pull(db, token, onProgress = () => {}) {
  let restarted = false;
  let changes = 0;
  for (let pages = 0; pages < 10000; pages++) {
    const cursor = await db.get("meta", "cursor");
    const query = `?limit=${PULL_LIMIT}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const response = await request("GET", "/sync/pull" + query, {token});
    if (response.status === 410 && !restarted) {
      // The feed was reset (a restore) or compacted past our cursor: start again. Drafts and
      // the outbox stay; sent visits are marked to be sent again (the server says duplicate).
      const tx = db.transaction(["assignments", "households", "forms", "meta", "visits"],
                                "readwrite");
      for (const s of ["assignments", "households", "forms"]) await tx.objectStore(s).clear();
      await tx.objectStore("meta").delete("cursor");
      for (const v of await tx.objectStore("visits").getAll()) {
        if (DONE_STATES.includes(v.state)) {
          v.state = "pending";
          v.batch_id = null;
          await tx.objectStore("visits").put(v);
        }
      }
      await tx.done;
      restarted = true;
      continue;
    }
    if (response.status !== 200) throw await envelope(response);
    const page = await response.json();
    // The page and its cursor in one transaction: the cursor never runs ahead of the data.
    const tx = db.transaction(["assignments", "households", "forms", "meta", "visits"],
                              "readwrite");
    for (const change of page.changes) await applyChange(tx, change);
    await tx.objectStore("meta").put(page.next_cursor, "cursor");
    await tx.done;
    changes += page.changes.length;
    onProgress({changes});
    if (!page.more) break;
  }
  for (const form of await db.getAll("forms")) {
    if (form.definition) continue;  // immutable once published: fetched once
    const response = await request("GET", `/forms/${form.form_id}/versions/${form.version}`,
                                   {token});
    if (response.status === 200) {
      const definition = await response.json();
      const current = await db.get("forms", form.id);
      if (current && current.hash === form.hash) {
        current.definition = definition;
        await db.put("forms", current);
      }
    }
  }
  return {changes};
}

// --------------------------------------------------------------------------- photos

/** HEAD the photo; PUT it when the server lacks it. True when the server has it. */
async function uploadPhoto(db, token, sha256) {
  const photo = await db.get("photos", sha256);
  if (!photo) return false;
  const head = await request("HEAD", `/photos/${sha256}`, {token});
  let done = head.status === 200;
  if (!done) {
    if (head.status !== 404) throw new HttpError(head.status, null, `HTTP ${head.status}`);
    // The whole Blob each time: a cut-off upload is sent again whole.
    const response = await request("PUT", `/photos/${sha256}`, {
      token, body: photo.blob, headers: {"Content-Type": photo.mime || "image/jpeg"}});
    if (response.status === 200 || response.status === 201) {
      done = true;
    } else if ([413, 415, 422].includes(response.status)) {
      const error = await envelope(response);
      photo.state = "failed";
      photo.error = {code: error.code, message: error.message};
      await db.put("photos", photo);
      return false;
    } else {
      throw await envelope(response);
    }
  }
  photo.state = "uploaded";
  photo.uploaded_at = now();
  photo.error = null;
  await db.put("photos", photo);
  return true;
}

function photosOf(visit) {
  return (visit.visit && visit.visit.photos || []).map((p) => p.sha256);
}

// --------------------------------------------------------------------------- push

async function recordResults(db, rows, results) {
  const tx = db.transaction("visits", "readwrite");
  for (let i = 0; i < rows.length; i++) {
    const v = await tx.store.get(rows[i].uuid);
    const r = results[i];
    if (!v) continue;
    v.state = r.status;
    v.errors = r.errors || [];
    v.missing_photos = r.missing_photos || [];
    v.updated_at = now();
    if (DONE_STATES.includes(r.status)) {
      v.acked_at = now();
      v.batch_id = null;
    }
    if (r.status !== "waiting_photos") v.batch_id = null;
    await tx.store.put(v);
  }
  await tx.done;
}

/** The next batch: visits already sent under a batch_id go again under that same id. */
async function nextBatch(db, tried) {
  const all = (await db.getAll("visits")).filter((v) => !tried.has(v.uuid));
  const sent = all.filter((v) => v.state === "sent" && v.batch_id);
  if (sent.length) {
    const id = sent[0].batch_id;
    return {batch_id: id, rows: sent.filter((v) => v.batch_id === id)};
  }
  const pending = all.filter((v) => v.state === "pending" && !v.moved && !v.blocked)
    .sort((a, b) => (a.queued_at || "").localeCompare(b.queued_at || "")).slice(0, BATCH);
  if (!pending.length) return null;
  const batch_id = crypto.randomUUID();
  const tx = db.transaction("visits", "readwrite");
  for (const v of pending) {
    v.state = "sent";
    v.batch_id = batch_id;
    v.attempts = (v.attempts || 0) + 1;
    await tx.store.put(v);
  }
  await tx.done;
  return {batch_id, rows: pending};
}

/**
 * One whole sync: pull, photos, push, the photos the server still misses, push again.
 * ``report(progress)`` is called as it goes.
 */
export async function syncAll(db, session, report = () => {}, {holdPhotos = false} = {}) {
  const token = session.token;
  const progress = {phase: "pull", visitsTotal: 0, visitsDone: 0, photosLeft: 0, results: {},
                    held: holdPhotos};
  const tell = () => report({...progress});
  tell();
  await pull(db, token, () => tell());

  // Photos of every visit still to send: HEAD, PUT the missing ones.
  progress.phase = "photos";
  const out = (await db.getAll("visits")).filter(
    (v) => OUTBOX_STATES.includes(v.state) && !v.moved);
  progress.visitsTotal = out.length;
  const wanted = [...new Set(out.flatMap(photosOf))];
  const photoRows = await Promise.all(wanted.map((sha) => db.get("photos", sha)));
  let left = photoRows.filter((p) => p && p.state !== "uploaded");
  progress.photosLeft = left.length;
  tell();
  // Photos held until Wi-Fi: the visits go now (the server keeps them waiting_photos), their
  // photos once the phone is on Wi-Fi.
  for (const photo of holdPhotos ? [] : left) {
    await uploadPhoto(db, token, photo.sha256);
    progress.photosLeft -= 1;
    tell();
  }
  // A visit whose photo the server refused for good is held back until it is retaken.
  const failed = new Set((await db.getAll("photos")).filter((p) => p.state === "failed")
    .map((p) => p.sha256));
  for (const v of out) {
    const blocked = photosOf(v).some((sha) => failed.has(sha));
    if (blocked !== Boolean(v.blocked)) {
      v.blocked = blocked;
      await db.put("visits", v);
    }
  }

  // Push, then the photos listed as missing, then once more for the visits that waited.
  for (let round = 0; round < 2; round++) {
    progress.phase = "push";
    tell();
    const tried = new Set();
    for (;;) {
      const batch = await nextBatch(db, tried);
      if (!batch) break;
      const visits = batch.rows.map((v) => v.visit);
      const response = await request("POST", "/sync/push", {token, json: {
        batch_id: batch.batch_id, device_id: session.device_id || deviceId(), visits}});
      if (response.status !== 200) throw await envelope(response);
      const body = await response.json();
      if (!body.results || body.results.length !== batch.rows.length) {
        throw new Error("jawaban server tidak sesuai jumlah kunjungan");
      }
      await recordResults(db, batch.rows, body.results);
      for (const [i, row] of batch.rows.entries()) {
        tried.add(row.uuid);
        const status = body.results[i].status;
        progress.results[status] = (progress.results[status] || 0) + 1;
        if (DONE_STATES.includes(status)) progress.visitsDone += 1;
      }
      tell();
    }
    const waiting = (await db.getAll("visits")).filter((v) => v.state === "waiting_photos");
    if (!waiting.length || holdPhotos) break;
    progress.phase = "photos";
    const missing = [...new Set(waiting.flatMap((v) => v.missing_photos || []))];
    progress.photosLeft = missing.length;
    tell();
    for (const sha of missing) {
      const photo = await db.get("photos", sha);
      if (photo && photo.state === "uploaded") {
        photo.state = "pending";  // up before, yet missing (a restored server): again
        await db.put("photos", photo);
      }
      await uploadPhoto(db, token, sha);
      progress.photosLeft -= 1;
      tell();
    }
    // Push those visits again: the server now answers duplicate (the same visit, complete).
    const tx = db.transaction("visits", "readwrite");
    for (const v of waiting) {
      const current = await tx.store.get(v.uuid);
      if (current && current.state === "waiting_photos") {
        current.state = "pending";
        await tx.store.put(current);
      }
    }
    await tx.done;
    progress.visitsDone = 0;
  }
  await db.put("meta", now(), "last_sync");
  await purgeOld(db);
  progress.phase = "done";
  tell();
  return progress;
}

/** Sent visits and their photos are kept 7 days after they were acknowledged, then go. */
export async function purgeOld(db, days = 7) {
  const limit = Date.now() - days * 86400e3;
  const visits = await db.getAll("visits");
  const keep = new Set();
  const drop = [];
  for (const v of visits) {
    if (DONE_STATES.includes(v.state) && v.acked_at && Date.parse(v.acked_at) < limit) {
      drop.push(v.uuid);
    } else {
      for (const sha of photosOf(v)) keep.add(sha);
      for (const p of Object.values(v.photos || {})) keep.add(p.sha256);
    }
  }
  if (!drop.length) return 0;
  const tx = db.transaction(["visits", "photos"], "readwrite");
  for (const uuid of drop) await tx.objectStore("visits").delete(uuid);
  for (const sha of await tx.objectStore("photos").getAllKeys()) {
    if (!keep.has(sha)) await tx.objectStore("photos").delete(sha);
  }
  await tx.done;
  return drop.length;
}

/**
 * Free at least ``bytes`` when space runs short: the photos of sent and acknowledged visits go,
 * oldest acknowledgement first. A photo a draft or an unsent visit still uses is never removed.
 * Returns the bytes freed.
 */
export async function evictSentPhotos(db, bytes) {
  const visits = await db.getAll("visits");
  const needed = new Set();
  for (const v of visits) {
    if (DONE_STATES.includes(v.state)) continue;
    for (const sha of photosOf(v)) needed.add(sha);
    for (const p of Object.values(v.photos || {})) needed.add(p.sha256);
  }
  const sent = visits.filter((v) => DONE_STATES.includes(v.state))
    .sort((a, b) => (a.acked_at || "").localeCompare(b.acked_at || ""));
  let freed = 0;
  for (const v of sent) {
    if (freed >= bytes) break;
    for (const sha of photosOf(v)) {
      if (needed.has(sha)) continue;
      const photo = await db.get("photos", sha);
      if (!photo) continue;
      await db.delete("photos", sha);
      freed += photo.size || 0;
    }
    v.photos_evicted = true;
    await db.put("visits", v);
  }
  return freed;
}

export {localTime};
