// `npm run bench`: measures Shoal (and, where installed, Serf doing the
// same job on this machine) and writes BENCHMARKS.md. Figures, not
// assertions. Flags: --quick (3 trials, no 50-peer run), --trials N, --no-serf.
import { availableParallelism, cpus, totalmem } from 'node:os'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT } from '../helpers/cluster.ts'
import { fiftyPeers, max, median, tenPeers } from './membership.ts'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    trials: { type: 'string' },
    'no-serf': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'BENCHMARKS.md') }
  }
})
const quick = values.quick
const trials = Number(values.trials ?? (quick ? 3 : 5))
const log = (line: string): void => { process.stderr.write(line + '\n') }
const command = `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`

interface Row { figure: string, shoal: string, goal: string, anchor: string }
const rows: Row[] = []
const ms = (x: number): string => `${Math.round(x)} ms`
const s = (x: number): string => `${(x / 1000).toFixed(2)} s`

log(`membership: 10 peers, ${trials} trials`)
const ten = await tenPeers(trials, log)

let serf: import('./serf.ts').SerfFigures | undefined
if (!values['no-serf']) {
  try {
    const mod = await import('./serf.ts')
    if (mod.serfAvailable()) {
      log(`serf: 10 agents, ${trials} trials`)
      serf = await mod.measureSerf({ agents: 10, trials, log })
    } else {
      log('serf: not installed (apt-get install -y serf); its column shows the issue\'s anchors')
    }
  } catch (err) {
    log(`serf: skipped (${(err as Error).message})`)
  }
}

rows.push({
  figure: `SIGKILL of a peer until every other peer marks it \`dead\`, 10 peers, median / max of ${trials}`,
  shoal: `${s(median(ten.detectMs))} / ${s(max(ten.detectMs))}`,
  goal: '≤ 2 s',
  anchor: serf !== undefined ? `Serf ${serf.packageVersion ?? serf.version} (LAN defaults), 10 agents, measured here: ${s(serf.detectMedianMs)} / ${s(serf.detectMaxMs)}` : 'Serf (memberlist LAN defaults): median 5.6 s'
})
rows.push({
  figure: `10 fresh peers until all see 10 \`alive\` (from the last peer's start), median / max of ${trials}`,
  shoal: `${ms(median(ten.convergeMs))} / ${ms(max(ten.convergeMs))}`,
  goal: '≤ 0.5 s',
  anchor: serf !== undefined ? `Serf, measured here (from the last agent's spawn): ${ms(serf.convergeMedianMs)} / ${ms(serf.convergeMaxMs)}` : 'Serf: median 0.37 s'
})
rows.push({
  figure: 'idle RSS of one daemon (10-peer cluster, median / max over peers); in brackets, the part private to the process',
  shoal: `${median(ten.rssMb).toFixed(0)} MB / ${max(ten.rssMb).toFixed(0)} MB (${median(ten.privateMb).toFixed(0)} MB private)`,
  goal: '≤ 80 MB',
  anchor: serf !== undefined ? `Serf agent, measured here: ${serf.rssMb.toFixed(0)} MB; a k3s agent is about 275 MB` : 'a k3s agent is about 275 MB'
})

// Context for the memory figure: what Node alone, and Node with the libp2p
// stack imported (nothing started), already hold.
const probeRss = (code: string): number => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `${code}; await new Promise(r => setTimeout(r, 1000)); const s = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8'); console.log(/VmRSS:\\s+(\\d+)/.exec(s)[1])`], { cwd: ROOT, encoding: 'utf8' })
  return Number(out.trim()) / 1024
}
const bareRss = probeRss('')
const libp2pRss = probeRss("await Promise.all(['libp2p', '@libp2p/gossipsub', '@chainsafe/libp2p-noise', '@chainsafe/libp2p-yamux', '@libp2p/tcp', '@libp2p/identify', '@libp2p/ping', '@libp2p/pnet'].map(m => import(m)))")
rows.push({ figure: 'context: RSS of a bare `node` process / of one that has only imported the libp2p stack', shoal: `${bareRss.toFixed(0)} MB / ${libp2pRss.toFixed(0)} MB`, goal: '', anchor: '' })

if (!quick) {
  log('membership: 50 peers')
  const fifty = await fiftyPeers(log)
  rows.push({ figure: '50 peers (started 5 at a time): from the last peer\'s start until all see 50 `alive`', shoal: fifty.convergeMs !== undefined ? ms(fifty.convergeMs) : `not within 60 s: ${fifty.partial ?? ''}`, goal: '≤ 1 s', anchor: 'memberlist LAN defaults: 7–41 s of suspicion at 50 nodes' })
  rows.push({ figure: '50 peers: SIGKILL of one until all 49 others mark it `dead`', shoal: fifty.detectMs !== undefined ? s(fifty.detectMs) : 'not within 60 s', goal: '≤ 3 s', anchor: '' })
  rows.push({ figure: '50 peers: CPU of one idle peer (median / max of 10 peers, 20 s)', shoal: `${median(fifty.idleCpuPercent).toFixed(2)} % / ${max(fifty.idleCpuPercent).toFixed(2)} % of a core`, goal: '≤ 1 %', anchor: '' })
}

const table = [
  '| figure | Shoal | goal | anchor |',
  '|---|---|---|---|',
  ...rows.map(r => `| ${r.figure} | ${r.shoal} | ${r.goal} | ${r.anchor} |`)
].join('\n')

const doc = `# Benchmarks

Written by \`${command}\` on ${new Date().toISOString().slice(0, 10)}: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.
Every peer is a real \`shoald\` process on its own loopback address with default timings; times come from the peers' own log lines.

## Membership

${table}

How each figure is taken (\`test/bench/membership.ts\`${serf !== undefined ? ', `test/bench/serf.ts`' : ''}):
- **Detection:** the benchmark notes the time, SIGKILLs one peer, and reads the time at which each other peer logged \`member.dead\`; the figure is the latest of those, per trial. The victim is restarted between trials.
- **Convergence:** one founding peer, then the others started together with \`--join\` to it; the figure runs from the last peer's \`started\` log line to the last peer's \`members.alive\` line with the full count. Node's own start-up (about half a second per process here) is not in it.
- **Memory:** VmRSS from \`/proc/<pid>/status\` after 10 s idle; \`private\` is Private_Clean + Private_Dirty from \`/proc/<pid>/smaps_rollup\`, which leaves out the pages of the \`node\` binary that every peer on a host shares (about 55 MB of each RSS). **CPU:** user + system time from \`/proc/<pid>/stat\` over 20 s idle.
${serf !== undefined ? `- **Serf** runs with its default (LAN) timings on 127.0.60.x, timed by the moment each agent logs \`EventMemberJoin\` / \`EventMemberFailed\` (its event handlers fire 1–3 s later still, after Serf's event coalescing: ${s(serf.handler.detectMedianMs)} median detection as a handler sees it). Its convergence runs from the last agent's spawn, as a Go agent starts in milliseconds.\n` : ''}
### Where a goal is missed, and why
- **Memory.** Node itself and the libp2p modules (imported, not yet started) account for most of a daemon's RSS: see the context row. About 55 MB of each RSS are the \`node\` binary's own pages, shared by every peer on a host. Meeting 80 MB would take a smaller runtime or a smaller network stack, not a change in Shoal's own code.
- **Idle CPU and the 50-peer figures.** Every gossiped message costs each peer a few hundred microseconds in libp2p's JavaScript pnet, Noise and Yamux layers. Shoal already bounds the cluster's heartbeat rate (\`--gossip-rate\`, default 5 a second), gossips unsigned over a small mesh, and has turned off libp2p's and Yamux's own pings; what remains is the idle CPU in the table. Fifty such processes on this 2-core machine use about a core between them while idle, so the last peers to join wait for CPU and convergence at 50 peers takes seconds. Crash detection does not suffer: it rides on closed connections.
- **Convergence of 10 fresh peers:** ten Node processes that start at once compete for two cores while each pays for its first handshakes; a lone joiner on an idle machine is alive everywhere within about 0.1 s of its start.
`
writeFileSync(values.out, doc)
log(`wrote ${values.out}`)
log(table)
