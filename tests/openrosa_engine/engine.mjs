// ODK's own form engine (@getodk/xforms-engine, the engine of ODK Web Forms) driven from
// Python's tests: one long-running process, one JSON request per line on stdin, one JSON
// answer per line on stdout. Used by tests/openrosa (parity of the translated rules with the
// Python JsonLogic engine, the prefill construction, submissions serialized as Collect would).
//
// Requests:
//   {"op": "load", "form": NAME, "xform": XML, "attachments": {"households.csv": TEXT, ...}}
//   {"op": "run", "form": NAME, "today": "YYYY-MM-DD", "steps": [STEP...], "payload": bool}
//     STEP: {"set": REF, "value": TEXT|null}  answer a question (selects: codes, space-separated;
//                                             photos: the file name, bytes in "base64")
//           {"count": REF, "n": N}            make an uncontrolled repeat hold N entries
//   answers {"ok": true, "nodes": [{ref, type, value, relevant, valid}], "payload": {...}}
//   with every node of the instance after the steps; "payload" (when asked) is
//   prepareInstancePayload's status and its xml_submission_file.
//   {"op": "quit"}
//
// The engine is set up for Node by odk.mjs (jsdom globals, __dirname, a fixable clock); the
// clock is fixed per run, so that today() is the answer set's visit date (noon, process TZ).
import { createInterface } from 'node:readline';
import { RealDate, fixClock, loadForm } from './odk.mjs';

const forms = new Map();

function children(node) {
  return node.currentState.children ?? [];
}

function index(root) {
  const byRef = new Map();
  const walk = (n) => { byRef.set(n.currentState.reference, n); children(n).forEach(walk); };
  walk(root);
  return byRef;
}

function text(value) {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'object' ? v.value : String(v))).join(' ');
  if (typeof value === 'object') {
    if ('value' in value) return String(value.value);
    if (value.toString !== Object.prototype.toString) return String(value);
    if ('latitude' in value) {
      return [value.latitude, value.longitude, value.altitude ?? 0, value.accuracy ?? 0].join(' ');
    }
    return JSON.stringify(value);
  }
  return String(value);
}

function dump(root) {
  const out = [];
  const walk = (n) => {
    const s = n.currentState;
    const v = n.validationState?.violation ?? null;
    out.push({
      ref: s.reference, type: n.nodeType, relevant: s.relevant,
      value: n.nodeType.startsWith('repeat') || n.nodeType === 'group' || n.nodeType === 'root' ? null : text(s.value),
      instance: 'instanceValue' in s ? s.instanceValue : undefined,
      valid: v === null, violation: v ? v.condition : null,
      message: v?.message?.asString ?? null,
    });
    children(n).forEach(walk);
  };
  walk(root);
  return out;
}

function step(root, s) {
  const byRef = index(root);
  if ('count' in s) {
    const range = byRef.get(s.count);
    if (!range) throw new Error(`no repeat ${s.count}`);
    const have = children(range).length;
    if (have < s.n) range.addInstances(have - 1 < 0 ? undefined : have - 1, s.n - have);
    else if (have > s.n) range.removeInstances(s.n, have - s.n);
    return;
  }
  const node = byRef.get(s.set);
  if (!node) throw new Error(`no node ${s.set}`);
  if (node.nodeType === 'select') {
    if (node.appearances?.['minimal'] || node.selectType === 'select1' || node.definition?.bodyElement?.type === 'select1') {
      node.selectValue(s.value);
    } else {
      node.selectValues(s.value === null ? [] : s.value.split(' '));
    }
  } else if (node.nodeType === 'upload') {
    // a photo: a File named as Collect names it (bytes from "base64", else a placeholder)
    const bytes = s.base64 ? Buffer.from(s.base64, 'base64') : Buffer.from(s.value ?? '');
    node.setValue(s.value === null ? null : new File([bytes], s.value, { type: 'image/jpeg' }));
  } else {
    node.setValue(s.value === null ? '' : s.value);
  }
}

async function run(req) {
  const form = forms.get(req.form);
  if (!form) throw new Error(`form ${req.form} is not loaded`);
  fixClock(new RealDate(`${req.today ?? '2026-01-05'}T12:00:00`).getTime());
  const { root } = form.createInstance();
  for (const s of req.steps ?? []) step(root, s);
  const answer = { ok: true, nodes: dump(root) };
  if (req.payload) {
    const payload = await root.prepareInstancePayload();
    const file = payload.data[0].get('xml_submission_file');
    answer.payload = { status: payload.status, xml: file ? await file.text() : null,
      violations: (payload.violations ?? []).map((v) => v.reference ?? String(v.nodeId)) };
  }
  fixClock(null);
  return answer;
}

async function handle(req) {
  if (req.op === 'load') {
    const attachments = req.attachments ?? {};
    const result = await loadForm(req.xform, {
      fetchFormAttachment: async (url) => {
        const name = String(url).split('/').pop();
        if (!(name in attachments)) return new Response('', { status: 404 });
        return new Response(attachments[name], { status: 200, headers: { 'Content-Type': 'text/csv' } });
      },
    });
    if (result.status !== 'success') {
      return { ok: false, error: String(result.error?.message ?? result.warnings ?? result.status) };
    }
    forms.set(req.form, result);
    return { ok: true };
  }
  if (req.op === 'run') return run(req);
  return { ok: false, error: `unknown op ${req.op}` };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const req = JSON.parse(line);
    if (req.op === 'quit') break;
    answer = await handle(req);
  } catch (err) {
    answer = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(JSON.stringify(answer, (k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}
