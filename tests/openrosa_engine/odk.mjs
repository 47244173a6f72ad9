// ODK's form engine (@getodk/xforms-engine) with what it needs on Node 20, shared by engine.mjs
// and tests/openrosa/collect_client.mjs: jsdom's DOM globals and globalThis.__dirname set before
// the engine is imported (its bundled tree-sitter reads __dirname), and a clock that can be
// fixed, so that today() is the date a test chooses.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('');
for (const key of ['DOMParser', 'XMLSerializer', 'Node', 'Document', 'XMLDocument', 'Element',
  'Attr', 'Text', 'NodeFilter', 'DocumentFragment', 'document']) {
  if (!(key in globalThis)) globalThis[key] = dom.window[key];
}
globalThis.__dirname = dirname(fileURLToPath(import.meta.url));

export const RealDate = Date;
let fixedNow = null;
class FakeDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && fixedNow !== null) super(fixedNow);
    else super(...args);
  }
  static now() { return fixedNow !== null ? fixedNow : RealDate.now(); }
}
globalThis.Date = FakeDate;

/** Fix the clock at `ms` since the epoch; null gives the real clock back. */
export function fixClock(ms) { fixedNow = ms; }
/** The fixed time (ms), or null when the clock is real. */
export function fixedClock() { return fixedNow; }

export const { loadForm } = await import('@getodk/xforms-engine');
