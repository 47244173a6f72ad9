// The phone's store: one IndexedDB database per user, never the Cache API.
//
// Stores: meta (session, cursor, last sync), assignments, households, forms (with their
// definitions), visits (drafts and the outbox, keyed by uuid) and photos (Blobs keyed by
// their SHA-256). Logging out deletes the user's whole database.
import {deleteDB, openDB} from "idb";

const CURRENT = "lapangan.user";
const DEVICE = "lapangan.device";

export const OUTBOX_STATES = ["pending", "sent", "waiting_photos"];
export const DONE_STATES = ["accepted", "duplicate"];

export function dbName(username) {
  return "lapangan:" + username;
}

export function currentUser() {
  return localStorage.getItem(CURRENT);
}

export function setCurrentUser(username) {
  if (username) localStorage.setItem(CURRENT, username);
  else localStorage.removeItem(CURRENT);
}

export function deviceId() {
  let id = localStorage.getItem(DEVICE);
  if (!id) {
    id = "lapangan-" + crypto.randomUUID().slice(0, 13);
    localStorage.setItem(DEVICE, id);
  }
  return id;
}

export async function openUserDB(username) {
  return openDB(dbName(username), 1, {
    upgrade(db) {
      db.createObjectStore("meta");
      db.createObjectStore("assignments", {keyPath: "id"});
      db.createObjectStore("households", {keyPath: "household_id"});
      db.createObjectStore("forms", {keyPath: "id"});
      const visits = db.createObjectStore("visits", {keyPath: "uuid"});
      visits.createIndex("state", "state");
      visits.createIndex("household_id", "household_id");
      db.createObjectStore("photos", {keyPath: "sha256"});
    },
  });
}

/** Forget everything of this user on this phone. */
export async function wipeUser(db, username) {
  if (db) db.close();
  await deleteDB(dbName(username));
  setCurrentUser(null);
}

/** Visits that are not on the server yet, drafts included (what a logout would lose). */
export async function unsent(db) {
  const all = await db.getAll("visits");
  return all.filter((v) => !DONE_STATES.includes(v.state));
}

export async function outbox(db) {
  const all = await db.getAll("visits");
  return all.filter((v) => OUTBOX_STATES.includes(v.state));
}

export function now() {
  return new Date().toISOString();
}

/** An ISO 8601 time with the phone's offset (2026-01-05T09:12:00+07:00), as the contract asks. */
export function localTime(date = new Date()) {
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const off = -date.getTimezoneOffset();
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${off >= 0 ? "+" : "-"}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}
