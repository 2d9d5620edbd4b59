// Container records on disk (daemon/kubelet/records.ts): a write a kill
// cut off between the temporary file and its rename is not lost (the
// container it names would run on unknown to the restarted runtime), a
// partial one is dropped, and an unreadable record is skipped.
import test from 'ava'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadRecords, saveRecord } from '../../daemon/kubelet/records.ts'
import { createLogger } from '../../daemon/log/log.ts'

test('a whole temporary record is the newest write and is taken; a partial one is dropped; an unreadable record is skipped', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-records-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await saveRecord(join(dir, 'a.json'), { id: 'a', state: 'exited' })
  // b: written whole, killed before the rename; a: a newer state written whole over an older record, not renamed either.
  await writeFile(join(dir, 'b.json.tmp'), JSON.stringify({ id: 'b', state: 'running' }))
  await writeFile(join(dir, 'a.json.tmp'), JSON.stringify({ id: 'a', state: 'running' }))
  await saveRecord(join(dir, 'c.json'), { id: 'c', state: 'running' })
  await writeFile(join(dir, 'c.json.tmp'), '{"id":"c","sta')
  await writeFile(join(dir, 'd.json'), 'not json')
  const recs = await loadRecords<{ id: string, state: string }>(dir, createLogger('silent', 'test'))
  t.deepEqual(recs.map(r => `${r.id}:${r.state}`).sort(), ['a:running', 'b:running', 'c:running'])
  t.deepEqual((await readdir(dir)).sort(), ['a.json', 'b.json', 'c.json', 'd.json'], 'the renames finished, the partial file gone')
})
