// A Collect-like OpenRosa client over real HTTP, with ODK's own form engine
// (@getodk/xforms-engine) filling the form. One request as JSON on stdin, one answer on stdout:
//   {"server": "http://127.0.0.1:PORT/openrosa/key/TOKEN", "form_id": ID, "today": "YYYY-MM-DD",
//    "steps": [{"set": REF, "value": TEXT, "base64"?: BYTES}...], "split": true,
//    "minutes": 25}  (the clock is fake: today at noon, plus minutes when the form is finalized)
// It does what Collect does (tests/openrosa/collect.py names the Collect sources):
//   1. GET formList, then the form at downloadUrl (its md5 must be the listed hash), the manifest
//      and each media file (each md5 must be the manifest's hash);
//   2. fills the form in the engine with the downloaded CSVs; prepareInstancePayload;
//   3. HEAD /submission (204, X-OpenRosa-Accept-Content-Length), then POSTs the XML and the
//      photos, split in two POSTs (the first with *isIncomplete*=yes) when "split".
// Every request carries X-OpenRosa-Version, Date and a Collect User-Agent.
import { createHash } from 'node:crypto';
import {
  RealDate, fixClock, fixedClock, loadForm,
} from '../openrosa_engine/odk.mjs';

const HEADERS = {
  'User-Agent': 'org.odk.collect.android/v2026.2.3 Dalvik/2.1.0 (Linux; U; Android 13)',
  'X-OpenRosa-Version': '1.0',
};
const md5 = (bytes) => createHash('md5').update(bytes).digest('hex');
const withDate = () => ({ ...HEADERS, Date: new RealDate().toUTCString() });

async function get(url) {
  const res = await fetch(url, { headers: withDate() });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  if (res.headers.get('x-openrosa-version') !== '1.0') throw new Error(`GET ${url}: no X-OpenRosa-Version`);
  return bytes;
}

function xmlDoc(bytes) {
  return new DOMParser().parseFromString(bytes.toString('utf-8'), 'text/xml');
}

function childText(el, name) {
  const found = [...el.childNodes].find((c) => c.localName === name);
  return found ? found.textContent : null;
}

function step(byRef, s) {
  const node = byRef().get(s.set);
  if (!node) throw new Error(`no node ${s.set}`);
  if (node.nodeType === 'select') {
    if (node.selectType === 'select1' || node.definition?.bodyElement?.type === 'select1') node.selectValue(s.value);
    else node.selectValues(s.value === null ? [] : s.value.split(' '));
  } else if (node.nodeType === 'upload') {
    node.setValue(new File([Buffer.from(s.base64, 'base64')], s.value, { type: 'image/jpeg' }));
  } else {
    node.setValue(s.value === null ? '' : s.value);
  }
}

async function main(req) {
  const out = { ok: true };
  // 1. formList, form, manifest, media
  const list = xmlDoc(await get(`${req.server}/formList`));
  const xform = [...list.getElementsByTagName('xform')].find((x) => childText(x, 'formID') === req.form_id);
  if (!xform) throw new Error(`formList has no ${req.form_id}`);
  const formBytes = await get(childText(xform, 'downloadUrl'));
  out.form_hash_ok = `md5:${md5(formBytes)}` === childText(xform, 'hash');
  const manifest = xmlDoc(await get(childText(xform, 'manifestUrl')));
  const media = {};
  out.media = [];
  for (const file of [...manifest.getElementsByTagName('mediaFile')]) {
    const name = childText(file, 'filename');
    const bytes = await get(childText(file, 'downloadUrl'));
    media[name] = bytes.toString('utf-8');
    out.media.push({ name, hash_ok: `md5:${md5(bytes)}` === childText(file, 'hash'), text: media[name] });
  }
  // 2. fill
  fixClock(new RealDate(`${req.today}T12:00:00`).getTime());
  const form = await loadForm(formBytes.toString('utf-8'), {
    fetchFormAttachment: async (url) => {
      const name = String(url).split('/').pop();
      return name in media ? new Response(media[name], { status: 200 }) : new Response('', { status: 404 });
    },
  });
  if (form.status !== 'success') throw new Error(`loadForm: ${form.status}`);
  const { root } = form.createInstance();
  const byRef = () => {
    const m = new Map();
    const walk = (n) => { m.set(n.currentState.reference, n); (n.currentState.children ?? []).forEach(walk); };
    walk(root);
    return m;
  };
  for (const s of req.steps) step(byRef, s);
  fixClock(fixedClock() + (req.minutes ?? 25) * 60000); // the enumerator takes some time to fill it
  const payload = await root.prepareInstancePayload();
  fixClock(null);
  out.payload_status = payload.status;
  if (payload.status !== 'ready') return out;
  const xml = await payload.data[0].get('xml_submission_file').text();
  out.xml = xml;
  const photos = req.steps.filter((s) => s.base64).map((s) => [s.value, Buffer.from(s.base64, 'base64')]);
  // 3. HEAD, then POST (split in two as Collect splits)
  const head = await fetch(`${req.server}/submission?deviceID=collect:NodeHarness000001`, { method: 'HEAD', headers: withDate() });
  out.head = { status: head.status, accept: head.headers.get('x-openrosa-accept-content-length'),
    version: head.headers.get('x-openrosa-version') };
  const groups = req.split && photos.length > 1 ? [photos.slice(0, 1), photos.slice(1)] : [photos];
  out.posts = [];
  for (let i = 0; i < groups.length; i += 1) {
    const body = new FormData();
    body.append('xml_submission_file', new Blob([xml], { type: 'text/xml' }), 'submission.xml');
    for (const [name, bytes] of groups[i]) body.append(name, new Blob([bytes], { type: 'image/jpeg' }), name);
    if (i < groups.length - 1) body.append('*isIncomplete*', 'yes');
    const res = await fetch(`${req.server}/submission?deviceID=collect:NodeHarness000001`, { method: 'POST', headers: withDate(), body });
    out.posts.push({ status: res.status, body: await res.text(), version: res.headers.get('x-openrosa-version') });
  }
  return out;
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
let answer;
try {
  answer = await main(JSON.parse(input));
} catch (err) {
  answer = { ok: false, error: String(err?.stack ?? err) };
}
process.stdout.write(JSON.stringify(answer) + '\n');
