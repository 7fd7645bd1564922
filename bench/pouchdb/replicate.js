// One side of the PouchDB comparison, run as its own process so that its memory is its own.
//   node replicate.js push URL DIR FILE   : load FILE (JSON Lines) into a local PouchDB at
//                                            DIR, then replicate it to URL
//   node replicate.js pull URL DIR        : replicate URL into a new local PouchDB at DIR
// Prints one JSON line: {docs, load_ms, replicate_ms}.
'use strict';
const fs = require('fs');
const PouchDB = require('pouchdb');

async function main() {
  const [mode, url, dir, file] = process.argv.slice(2);
  const local = new PouchDB(dir);
  let loadMs = 0;
  if (mode === 'push') {
    const docs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
      .map((line, i) => Object.assign({ _id: 'tip-' + String(i).padStart(6, '0') }, JSON.parse(line)));
    const t0 = Date.now();
    for (let i = 0; i < docs.length; i += 500) {
      await local.bulkDocs(docs.slice(i, i + 500));
    }
    loadMs = Date.now() - t0;
  }
  const remote = new PouchDB(url);
  const t1 = Date.now();
  const result = mode === 'push'
    ? await local.replicate.to(remote, { batch_size: 500 })
    : await local.replicate.from(remote, { batch_size: 500 });
  const replicateMs = Date.now() - t1;
  const info = await local.info();
  console.log(JSON.stringify({ docs: info.doc_count, written: result.docs_written, load_ms: loadMs, replicate_ms: replicateMs }));
}

main().catch((e) => { console.error(e); process.exit(1); });
