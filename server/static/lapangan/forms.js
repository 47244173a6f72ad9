// Lapangan's form engine: the published JSON form definition, evaluated in the browser with the
// same semantics, error codes, paths and (Indonesian) messages as the server's
// forms/engine.py `validate_visit`, and prefill as forms/prefill.py. No build step: an ES module.
//
// Parity is tested case for case (tests/lapangan/test_forms_parity.py): the JsonLogic golden
// cases, validation of valid and broken visits, and prefill of the demo families. The rules use
// json-logic-js (vendored), whose semantics forms/jsonlogic.py reproduces; Tapak adds no custom
// operator to it, so none is registered here. API (docs/lapangan.md, "Form engine"):
//
//   compileForm(definition)            -> compiled form (cached per definition object)
//   check(definition, visit)           -> {answers, errors, relevance}
//   validate(definition, visit)        -> [{path, code, message}]  (empty when the visit is valid)
//   isRelevant(definition, visit, path)-> boolean ("answers.anggota[0].hamil")
//   prefill(definition, record)        -> answers to start a visit from
//   applyRule(rule, data)              -> jsonLogic.apply, for the golden cases
//   ageInYears(birth, on), labelText(label, lang), message(key, params), show(value)

import { jsonLogic } from "./vendor/json-logic-js/json-logic.js";
import { MESSAGES } from "./messages.js";

const MISSING = Symbol("missing");
const SHA256_RE = /^[0-9a-f]{64}$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME_RE =
  /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|([+-])(\d{2}):(\d{2}))$/;
const INDEX_RE = /\[\d+\]/g;
const CONTEXT_KEYS = ["_visit", "_item", "_parent", "value"];
const GEO_KEYS = new Set(["lat", "lon", "accuracy_m", "altitude_m"]);
const PLACEHOLDER = /\{([a-z_]+)\}/g;

const VALUE = 0, GROUP = 1, REPEAT = 2, PHOTO = 3, NOTE = 4;
const KIND = { group: GROUP, repeat: REPEAT, photo: PHOTO, note: NOTE };

// ---------------------------------------------------------------------------
// Small helpers mirroring Python's dict and type semantics
// ---------------------------------------------------------------------------

const hasOwn = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const get = (o, k) => (hasOwn(o, k) ? o[k] : MISSING);
const isNum = (v) => typeof v === "number";
const isFiniteNum = (v) => typeof v === "number" && Number.isFinite(v);

/** The label in `lang` (Indonesian by default), falling back to Indonesian. */
export function labelText(label, lang = "id") {
  if (isObject(label)) return String(label[lang] || label.id || "");
  return label === null || label === undefined ? "" : String(label);
}

/** The sentence of the shared message table for `key` with its {placeholders} filled in. */
export function message(key, params = {}) {
  const template = MESSAGES[key];
  if (template === undefined) throw new Error(`no message for ${key}`);
  return template.replace(PLACEHOLDER, (m, name) => (hasOwn(params, name) ? String(params[name]) : m));
}

/** A value as a message shows it (forms/messages.py `show`). */
export function show(value) {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value === null || value === undefined || value === MISSING) return "null";
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return "[...]";
  return "{...}";
}

const number = (v) => String(v);

function daysInMonth(y, m) {
  return [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30,
    31, 31, 30, 31, 30, 31][m - 1];
}

function validDateParts(s) {
  const y = Number(s.slice(0, 4)), m = Number(s.slice(5, 7)), d = Number(s.slice(8, 10));
  return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

function validDate(v) {
  return typeof v === "string" && DATE_RE.test(v) && validDateParts(v);
}

/** ISO 8601 with an offset, like 2026-01-05T09:12:00+07:00 (forms/engine.py valid_datetime). */
export function validDatetime(v) {
  if (typeof v !== "string") return false;
  const m = DATETIME_RE.exec(v);
  if (!m || !validDateParts(m[1])) return false;
  if (Number(m[2]) > 23 || Number(m[3]) > 59) return false;
  if (m[4] != null && Number(m[4]) > 59) return false;
  if (m[6] != null && Number(m[7]) * 60 + Number(m[8]) >= 24 * 60) return false;
  return true;
}

/** Whole years from `birth` to `on` (YYYY-MM-DD); null when either is unusable. */
export function ageInYears(birth, on) {
  if (!validDate(birth) || !validDate(on)) return null;
  const by = Number(birth.slice(0, 4)), bm = Number(birth.slice(5, 7)), bd = Number(birth.slice(8, 10));
  const vy = Number(on.slice(0, 4)), vm = Number(on.slice(5, 7)), vd = Number(on.slice(8, 10));
  const before = vm < bm || (vm === bm && vd < bd);
  return vy - by - (before ? 1 : 0);
}

// ---------------------------------------------------------------------------
// Type checks: value -> null when fine, else [code, message key, params]
// ---------------------------------------------------------------------------

function rangeCheck(lo, hi) {
  if (lo == null && hi == null) return null;
  return (v) => {
    if (lo != null && v < lo) return ["min", "min", { min: number(lo) }];
    if (hi != null && v > hi) return ["max", "max", { max: number(hi) }];
    return null;
  };
}

function textCheck(field) {
  const lo = field.min_length, hi = field.max_length, pattern = field.pattern;
  const rx = pattern ? new RegExp(`^(?:${pattern})$`) : null;
  return (v) => {
    if (typeof v !== "string") return ["type", "type.text", {}];
    const n = Array.from(v).length; // code points, as Python's len()
    if (lo != null && n < lo) return ["min_length", "min_length", { min_length: number(lo) }];
    if (hi != null && n > hi) return ["max_length", "max_length", { max_length: number(hi) }];
    if (rx !== null && !rx.test(v)) return ["pattern", "pattern", { pattern }];
    return null;
  };
}

function integerCheck(field) {
  const rng = rangeCheck(field.min, field.max);
  return (v) => {
    if (!isNum(v) || !Number.isInteger(v)) return ["type", "type.integer", {}];
    return rng ? rng(v) : null;
  };
}

function decimalCheck(field) {
  const rng = rangeCheck(field.min, field.max);
  return (v) => {
    if (!isFiniteNum(v)) return ["type", "type.decimal", {}];
    return rng ? rng(v) : null;
  };
}

function booleanCheck() {
  return (v) => (typeof v === "boolean" ? null : ["type", "type.boolean", {}]);
}

function dateCheck(field) {
  const lo = field.min, hi = field.max;
  return (v) => {
    if (!validDate(v)) return ["type", "type.date", {}];
    if (lo != null && v < lo) return ["min", "min.date", { min: lo }];
    if (hi != null && v > hi) return ["max", "max.date", { max: hi }];
    return null;
  };
}

function datetimeCheck() {
  return (v) => (validDatetime(v) ? null : ["type", "type.datetime", {}]);
}

function choiceSets(options) {
  const ints = new Set(), strs = new Set();
  for (const o of options) {
    if (isNum(o.value)) ints.add(o.value);
    else if (typeof o.value === "string") strs.add(o.value);
  }
  return (v) => (isNum(v) && Number.isInteger(v) && ints.has(v)) ||
    (typeof v === "string" && strs.has(v));
}

function selectOneCheck(field, choices) {
  const ok = choiceSets(choices[field.choices]);
  const list = field.choices;
  return (v) => (ok(v) ? null : ["choice", "choice", { value: show(v), list }]);
}

function selectMultipleCheck(field, choices) {
  const ok = choiceSets(choices[field.choices]);
  const list = field.choices, lo = field.min_count, hi = field.max_count;
  return (v) => {
    if (!Array.isArray(v)) return ["type", "type.select_multiple", {}];
    for (const x of v) if (!ok(x)) return ["choice", "choice", { value: show(x), list }];
    if (new Set(v).size !== v.length) return ["duplicate", "duplicate", {}];
    if (lo != null && v.length < lo) return ["min_count", "min_count", { min_count: number(lo) }];
    if (hi != null && v.length > hi) return ["max_count", "max_count", { max_count: number(hi) }];
    return null;
  };
}

function geopointCheck() {
  return (v) => {
    if (!isObject(v) || !isFiniteNum(get(v, "lat"))) return ["type", "type.geopoint", {}];
    if (!isFiniteNum(get(v, "lon")) || !Object.keys(v).every((k) => GEO_KEYS.has(k))) {
      return ["type", "type.geopoint", {}];
    }
    if (!(v.lat >= -90 && v.lat <= 90) || !(v.lon >= -180 && v.lon <= 180)) {
      return ["type", "type.geopoint_range", {}];
    }
    const acc = get(v, "accuracy_m");
    if (acc !== MISSING && acc !== null && (!isFiniteNum(acc) || acc < 0)) {
      return ["type", "type.geopoint_accuracy", {}];
    }
    const alt = get(v, "altitude_m");
    if (alt !== MISSING && alt !== null && !isFiniteNum(alt)) {
      return ["type", "type.geopoint_altitude", {}];
    }
    return null;
  };
}

const CHECK_MAKERS = {
  text: textCheck, integer: integerCheck, decimal: decimalCheck, boolean: booleanCheck,
  date: dateCheck, datetime: datetimeCheck, geopoint: geopointCheck,
};

function makeCheck(field, choices) {
  if (field.type === "select_one") return selectOneCheck(field, choices);
  if (field.type === "select_multiple") return selectMultipleCheck(field, choices);
  const maker = CHECK_MAKERS[field.type];
  return maker ? maker(field) : null;
}

// ---------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------

function helpersOf(fields) {
  return fields.filter((f) => f.type === "date" && "age_helper" in f).map((f) => [f.age_helper, f.name]);
}

function compileNode(field, choices, photoPrefix) {
  const kind = hasOwn(KIND, field.type) ? KIND[field.type] : VALUE;
  const node = {
    field, kind,
    name: field.name,
    type: field.type,
    label: labelText(field.label) || field.name,
    required: Boolean(field.required),
    relevant: "relevant" in field ? field.relevant : undefined,
    constraint: "constraint" in field ? field.constraint : undefined,
    constraintMessage: labelText(field.constraint_message) || message("constraint.default"),
    check: makeCheck(field, choices),
    minCount: field.min_count,
    maxCount: field.max_count,
    photoKey: photoPrefix + field.name,
    children: [],
    names: new Set(),
    helpers: [],
  };
  if (kind === GROUP || kind === REPEAT) {
    const prefix = photoPrefix + field.name + (kind === GROUP ? "." : "[].");
    node.children = field.fields.map((f) => compileNode(f, choices, prefix));
    node.names = new Set(node.children.map((c) => c.name));
    node.helpers = helpersOf(field.fields);
  }
  return node;
}

function* photoKeys(nodes) {
  for (const n of nodes) {
    if (n.kind === PHOTO) yield n.photoKey;
    else if (n.children.length) yield* photoKeys(n.children);
  }
}

const compiled = new WeakMap();

/** The definition compiled once (cached per definition object). */
export function compileForm(definition) {
  let form = compiled.get(definition);
  if (form) return form;
  const choices = definition.choices || {};
  const nodes = definition.fields.map((f) => compileNode(f, choices, ""));
  form = {
    definition,
    formId: definition.form_id,
    version: definition.version,
    title: labelText(definition.title),
    choices,
    nodes,
    names: new Set(nodes.map((n) => n.name)),
    helpers: helpersOf(definition.fields),
    photoKeys: new Set(photoKeys(nodes)),
  };
  compiled.set(definition, form);
  return form;
}

const formOf = (definition) => (definition && definition.nodes ? definition : compileForm(definition));

/** jsonLogic.apply, exposed for the golden cases. */
export function applyRule(rule, data) {
  return jsonLogic.apply(rule, data);
}

// ---------------------------------------------------------------------------
// Validation (forms/engine.py validate_visit, step for step)
// ---------------------------------------------------------------------------

function error(st, path, code, msg) {
  st.errors.push({ path, code, message: msg });
}

function rule(st, logic, path, what) {
  try {
    return jsonLogic.truthy(jsonLogic.apply(logic, st.root));
  } catch (e) {
    error(st, path, "rule_error", message(`rule_error.${what}`));
    return null;
  }
}

const constraintMessage = (node) =>
  message("constraint", { label: node.label, constraint_message: node.constraintMessage });

function walk(nodes, names, raw, out, prefix, photoPrefix, st, helpers = []) {
  for (const key of Object.keys(raw)) {
    if (!names.has(key)) {
      error(st, `answers.${prefix}${key}`, "unknown_field", message("unknown_field", { key }));
      delete out[key];
    }
  }
  const root = st.root;
  if (helpers.length) {
    const visitDate = root._visit.date;
    for (const [helper, source] of helpers) {
      const b = get(raw, source);
      out[helper] = ageInYears(b === MISSING ? null : b, visitDate);
    }
  }
  for (const node of nodes) {
    const name = node.name;
    const path = `answers.${prefix}${name}`;
    let v = get(out, name);
    if (node.relevant !== undefined) {
      const rel = rule(st, node.relevant, path, "relevant");
      st.relevance[path] = Boolean(rel);
      if (!rel) {
        if (v !== MISSING) delete out[name];
        continue;
      }
    } else {
      st.relevance[path] = true;
    }
    if (node.kind === VALUE) {
      if (v === MISSING || v === null || v === "" || (Array.isArray(v) && v.length === 0)) {
        if (node.required) error(st, path, "required", message("required", { label: node.label }));
        if (v !== MISSING) delete out[name];
        continue;
      }
      const bad = node.check(v);
      if (bad !== null) {
        error(st, path, bad[0], message(bad[1], { label: node.label, ...bad[2] }));
        continue;
      }
      if (node.constraint !== undefined) {
        root.value = v;
        if (rule(st, node.constraint, path, "constraint") === false) {
          error(st, path, "constraint", constraintMessage(node));
        }
      }
    } else if (node.kind === REPEAT) {
      walkRepeat(node, v, out, prefix, photoPrefix, st);
    } else if (node.kind === GROUP) {
      if (v === MISSING || v === null) {
        v = {};
      } else if (!isObject(v)) {
        error(st, path, "type", message("type.group", { label: node.label }));
        delete out[name];
        continue;
      }
      const sub = { ...v };
      out[name] = sub;
      walk(node.children, node.names, v, sub, `${prefix}${name}.`, `${photoPrefix}${name}.`, st);
      if (Object.keys(sub).length === 0) {
        delete out[name];
      } else if (node.constraint !== undefined) {
        root.value = sub;
        if (rule(st, node.constraint, path, "constraint") === false) {
          error(st, path, "constraint", constraintMessage(node));
        }
      }
    } else if (node.kind === PHOTO) {
      walkPhoto(node, v, out, prefix, photoPrefix, st);
    } else if (v !== MISSING) { // a note takes no answer
      error(st, path, "unknown_field", message("unknown_field.note", { label: node.label }));
      delete out[name];
    }
  }
}

function walkRepeat(node, v, out, prefix, photoPrefix, st) {
  const name = node.name;
  const path = `answers.${prefix}${name}`;
  if (v === MISSING || v === null) {
    v = [];
  } else if (!Array.isArray(v)) {
    error(st, path, "type", message("type.repeat", { label: node.label }));
    delete out[name];
    return;
  }
  const n = v.length;
  if (n === 0 && node.required) error(st, path, "required", message("required.repeat", { label: node.label }));
  if (node.minCount != null && n < node.minCount && n) {
    error(st, path, "min_count",
      message("min_count.repeat", { label: node.label, min_count: number(node.minCount) }));
  }
  if (node.maxCount != null && n > node.maxCount) {
    error(st, path, "max_count",
      message("max_count.repeat", { label: node.label, max_count: number(node.maxCount) }));
  }
  const root = st.root;
  const savedItem = hasOwn(root, "_item") ? root._item : null;
  const savedParent = hasOwn(root, "_parent") ? root._parent : null;
  const cleaned = [];
  v.forEach((item, i) => {
    if (!isObject(item)) {
      error(st, `answers.${prefix}${name}[${i}]`, "type", message("type.repeat_entry"));
      return;
    }
    const sub = { ...item };
    root._parent = savedItem;
    root._item = sub;
    walk(node.children, node.names, item, sub, `${prefix}${name}[${i}].`,
      `${photoPrefix}${name}[${i}].`, st, node.helpers);
    for (const [helper] of node.helpers) delete sub[helper];
    cleaned.push(sub);
  });
  root._item = savedItem;
  root._parent = savedParent;
  if (cleaned.length) out[name] = cleaned;
  else if (hasOwn(out, name)) delete out[name];
  if (node.constraint !== undefined) {
    root.value = cleaned;
    if (rule(st, node.constraint, path, "constraint") === false) {
      error(st, path, "constraint", constraintMessage(node));
    }
  }
}

function walkPhoto(node, v, out, prefix, photoPrefix, st) {
  const name = node.name;
  const key = photoPrefix + name;
  const entry = st.photos.get(key);
  const path = `answers.${prefix}${name}`;
  if (v !== MISSING && v !== null && typeof v !== "string") {
    error(st, path, "type", message("type.photo", { label: node.label }));
    delete out[name];
    return;
  }
  if (entry === undefined) {
    if (node.required) {
      error(st, path, "required", message("required.photo", { label: node.label, key }));
    } else if (v !== MISSING && v) {
      error(st, path, "photo_missing", message("photo_missing", { label: node.label }));
    }
    if (v !== MISSING) delete out[name];
    return;
  }
  st.usedPhotos.add(key);
  out[name] = entry.sha256;
}

function collectPhotos(photos, st, form) {
  const byField = new Map();
  if (photos === MISSING || photos === null) return byField;
  if (!Array.isArray(photos)) {
    error(st, "photos", "type", message("type.photos"));
    return byField;
  }
  photos.forEach((p, i) => {
    if (!isObject(p)) {
      error(st, `photos[${i}]`, "type", message("type.photo_entry"));
      return;
    }
    const field = get(p, "field");
    const sha = get(p, "sha256");
    if (typeof field !== "string" || !field) {
      error(st, `photos[${i}].field`, "required", message("required.photo_field"));
      return;
    }
    if (!form.photoKeys.has(field.replace(INDEX_RE, "[]"))) {
      error(st, `photos[${i}].field`, "unknown_field", message("unknown_field.photo", { field }));
      return;
    }
    if (typeof sha !== "string" || !SHA256_RE.test(sha)) {
      error(st, `photos[${i}].sha256`, "type", message("type.photo_sha256"));
      return;
    }
    const fname = get(p, "filename");
    if (fname !== MISSING && fname !== null && typeof fname !== "string") {
      error(st, `photos[${i}].filename`, "type", message("type.photo_filename"));
      return;
    }
    if (byField.has(field)) {
      error(st, `photos[${i}].field`, "duplicate", message("duplicate.photo", { field }));
      return;
    }
    byField.set(field, p);
  });
  return byField;
}

/**
 * Check a visit (the push format: form_id, form_version, started_at, answers, photos) against
 * its form. Returns {answers, errors, relevance}: the cleaned answers the server would store,
 * every error as {path, code, message}, and for every question reached, whether it is relevant
 * (keyed by path, e.g. "answers.anggota[1].hamil"; a question under a group or repeat that is
 * not relevant is not reached and is absent).
 */
export function check(definition, visit) {
  const form = formOf(definition);
  const root = {};
  const st = { errors: [], photos: new Map(), usedPhotos: new Set(), root, relevance: {} };
  const done = (answers) => ({ answers, errors: st.errors, relevance: st.relevance });
  if (!isObject(visit)) {
    error(st, "", "type", message("type.visit"));
    return done({});
  }
  const formId = get(visit, "form_id");
  if (formId !== form.formId) {
    error(st, "form_id", "form_mismatch",
      message("form_mismatch.form_id", { got: show(formId), want: show(form.formId) }));
  }
  const fv = get(visit, "form_version");
  if (!(isNum(fv) && Number.isInteger(fv)) || fv !== form.version) {
    error(st, "form_version", "form_mismatch",
      message("form_mismatch.form_version", { got: show(fv), want: number(form.version) }));
  }
  const started = get(visit, "started_at");
  let visitDate = null;
  if (started === MISSING || started === null) {
    error(st, "started_at", "required", message("required.started_at"));
  } else if (!validDatetime(started)) {
    error(st, "started_at", "type", message("type.started_at"));
  } else {
    visitDate = started.slice(0, 10);
  }
  const answers = get(visit, "answers");
  if (!isObject(answers)) {
    const missing = answers === MISSING || answers === null;
    error(st, "answers", missing ? "required" : "type",
      message(missing ? "required.answers" : "type.answers"));
    return done({});
  }
  st.photos = collectPhotos(get(visit, "photos"), st, form);
  const known = {};
  for (const key of Object.keys(answers)) {
    if (form.names.has(key)) known[key] = answers[key];
    else error(st, `answers.${key}`, "unknown_field", message("unknown_field.top", { key }));
  }
  Object.assign(root, known);
  root._visit = { date: visitDate };
  root._item = null;
  root._parent = null;
  walk(form.nodes, form.names, known, root, "", "", st, form.helpers);
  for (const key of CONTEXT_KEYS) delete root[key];
  for (const [helper] of form.helpers) delete root[helper];
  return done(root);
}

/** Every error of a visit as [{path, code, message}], as the server's validate_visit gives. */
export function validate(definition, visit) {
  return check(definition, visit).errors;
}

/** Whether the question at `path` ("answers.x", "answers.anggota[2].hamil") is relevant now. */
export function isRelevant(definition, visit, path) {
  return check(definition, visit).relevance[path] === true;
}

// ---------------------------------------------------------------------------
// Prefill (forms/prefill.py prefill)
// ---------------------------------------------------------------------------

function recordGet(record, path) {
  let cur = record;
  for (const part of path.split(".")) {
    if (!isObject(cur)) return null;
    cur = hasOwn(cur, part) ? cur[part] : null;
  }
  return cur === undefined ? null : cur;
}

function prefillNodes(nodes, source, out) {
  for (const node of nodes) {
    const path = node.field.prefill;
    if (node.kind === GROUP) {
      const sub = {};
      prefillNodes(node.children, source, sub);
      if (Object.keys(sub).length) out[node.name] = sub;
    } else if (node.kind === REPEAT) {
      if (path == null) continue;
      const items = recordGet(source, path);
      if (!Array.isArray(items)) continue;
      const entries = items.map((member) => {
        const entry = {};
        if (isObject(member)) prefillNodes(node.children, member, entry);
        return entry;
      });
      if (entries.length) out[node.name] = entries;
    } else if (path != null && node.check !== null) {
      const value = recordGet(source, path);
      // A registry value that does not fit the question is left for the enumerator.
      if (value !== null && value !== "" && node.check(value) === null) out[node.name] = value;
    }
  }
}

/** The answers a visit starts from: every `prefill` path of the form read from the record. */
export function prefill(definition, record) {
  const out = {};
  prefillNodes(formOf(definition).nodes, record, out);
  return out;
}
