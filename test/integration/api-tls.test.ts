// TLS required on the API (127.0.143.2-4, `--api-tls required` forced on
// loopback addresses, where the default is optional): plain HTTP gets a 400
// Status and never reaches the API; each member gossips its certificate's
// fingerprint and GET /shoal/v1/members serves it; the CLI works with no
// flags from the config file shoald wrote (https://, the fingerprint
// pinned) and refuses a peer whose certificate is not that one; `shoal
// kubeconfig` pins the gossiped fingerprints and leaves out an impostor on a
// member's address; kubectl works through that kubeconfig. kubectl comes from
// the machine: without it that part fails under CI and is skipped elsewhere.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { request } from 'node:https'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { acceptTls, API_CERT_FILE, createApiCert } from '../../daemon/api/tls.ts'
import type { MemberView, RaftStatusView } from '../../protocol/api.ts'
import { certificateFingerprint } from '../../protocol/tls.ts'
import { API_PORT, SHOAL, startCluster, stopAll, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { run } from '../helpers/run.ts'

const IPS = ['127.0.143.2', '127.0.143.3', '127.0.143.4']
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
const CI = process.env.CI === 'true'

const certOf = (p: Peer): string => readFileSync(join(p.opts.dataDir, API_CERT_FILE), 'utf8')

/** An API call over https with the cluster's admin token, trusting only the peer's own <data-dir>/api.crt. */
async function secure (p: Peer, path: string, token: string): Promise<{ status: number, json: any }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: p.opts.ip, port: API_PORT, path, ca: certOf(p), headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (s: string) => { text += s }).on('end', () => {
        try { resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }) } catch (err) { reject(err) }
      })
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) }).on('error', reject).end()
  })
}

test('--api-tls required: plain HTTP refused, fingerprints gossiped and pinned by the CLI and kubeconfig, kubectl works', async t => {
  t.timeout(240_000)
  const { dir, peers } = await startCluster('api-tls', IPS, ['--api-tls', 'required'])
  let impostor: ReturnType<typeof createServer> | undefined
  try {
    const [p1, p2, p3] = peers as [Peer, Peer, Peer]
    // The founder's token: joiners adopt it (and write it down) a moment later.
    const token = p1.token()

    // Plain HTTP is answered 400 with a Status naming the fix, even without a token.
    for (const p of peers) {
      const res = await fetch(`${p.apiUrl}/shoal/v1/members`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
      t.is(res.status, 400, p.name)
      t.like(await res.json(), { kind: 'Status', code: 400, reason: 'BadRequest', message: `Client sent an HTTP request to an HTTPS server: this API requires TLS (shoald --api-tls required); use https://${p.opts.ip}:${API_PORT}` })
    }

    await waitFor('a leader every peer knows, over https', async () => {
      const views = await Promise.all(peers.map(async p => (await secure(p, '/shoal/v1/raft', token)).json as RaftStatusView))
      return views.every(v => v.leader !== undefined && v.leader.id === views[0]?.leader?.id)
    }, 60_000, 200)

    // Every member's record carries its own certificate's fingerprint, as every peer sees it.
    const fingerprints = Object.fromEntries(peers.map(p => [p.name, certificateFingerprint(certOf(p))]))
    t.is(new Set(Object.values(fingerprints)).size, 3, 'each peer has its own certificate')
    for (const p of peers) {
      await waitFor(`${p.name} to know every member's fingerprint`, async () => {
        const items = (await secure(p, '/shoal/v1/members', token)).json.items as MemberView[]
        return items.length === 3 && items.every(m => m.apiFingerprint === fingerprints[m.name])
      }, 30_000, 200)
    }

    // The config file shoald wrote: an https:// URL and the certificate's fingerprint; the CLI needs no flags.
    const clientConfig = join(dir, `${p1.name}-client.json`)
    const written = JSON.parse(readFileSync(clientConfig, 'utf8')) as { servers: string[], fingerprints: string[] }
    t.deepEqual(written.servers, [`https://${p1.opts.ip}:${API_PORT}`])
    t.deepEqual(written.fingerprints, [fingerprints[p1.name]])
    const env = { PATH: process.env.PATH ?? '', HOME: dir, SHOAL_CONFIG: clientConfig }
    const members = await run(process.execPath, [SHOAL, 'members'], env)
    t.is(members.code, 0, members.stderr)
    t.regex(members.stdout, /^p1\*\s+alive\s/m)

    // The same URL with another peer's certificate pinned is refused, in one line; so is plain HTTP.
    const wrong = await run(process.execPath, [SHOAL, '--api-cert', join(p2.opts.dataDir, API_CERT_FILE), 'members'], env)
    t.is(wrong.code, 1)
    t.is(wrong.stderr, `shoal: cannot reach any server (https://${p1.opts.ip}:${API_PORT}: TLS: the server's certificate (SHA-256 ${fingerprints[p1.name] ?? ''}) is not a trusted one: pin its fingerprint in the config file or pass --api-cert <data-dir>/api.crt)\n`)
    const plain = await run(process.execPath, [SHOAL, '--server', p1.apiUrl, 'members'], env)
    t.is(plain.code, 1)
    t.regex(plain.stderr, /^shoal: 400 Client sent an HTTP request to an HTTPS server: [^\n]+\n$/)

    // kubeconfig pins exactly the gossiped certificates.
    const made = await run(process.execPath, [SHOAL, 'kubeconfig'], env)
    t.is(made.code, 0, made.stderr)
    t.is(made.stderr, '')
    const doc = parseYaml(made.stdout) as { clusters: Array<{ name: string, cluster: { server: string, 'certificate-authority-data': string } }>, 'current-context': string }
    t.deepEqual(doc.clusters.map(c => [c.name, c.cluster.server, certificateFingerprint(Buffer.from(c.cluster['certificate-authority-data'], 'base64').toString())]),
      peers.map(p => [`shoal-${p.name}`, `https://${p.opts.ip}:${API_PORT}`, fingerprints[p.name]]))
    t.is(doc['current-context'], 'shoal-p1')
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, made.stdout)

    if (HAS_KUBECTL) {
      const kenv = { ...process.env, HOME: dir, KUBECONFIG: kubeconfig }
      const nodes = await waitFor('kubectl to list three Ready nodes through p2', async () => {
        const r = await run('kubectl', ['--cache-dir', join(dir, 'kcache'), '--context', 'shoal-p2', 'get', 'nodes'], kenv)
        return (r.stdout.match(/ Ready /g) ?? []).length === 3 ? r : undefined
      }, 60_000, 500)
      t.regex(nodes.stdout, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n/)
      const created = await run('kubectl', ['--cache-dir', join(dir, 'kcache'), '--context', 'shoal-p3', 'create', 'configmap', 'tls-check', '--from-literal=a=b'], kenv)
      t.is(created.stdout, 'configmap/tls-check created\n', created.stderr)
    } else if (CI) {
      t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    }

    // An impostor on p3's address, with a certificate of its own: kubeconfig leaves p3 out, saying why.
    await p3.kill('SIGKILL')
    const fake = await createApiCert([p3.opts.ip])
    impostor = createServer((_req, res) => { res.end('{}') })
    acceptTls(impostor, fake, { mode: 'required' })
    const server = impostor
    await waitFor('p3\'s address to be free for the impostor', async () => await new Promise<boolean>(resolve => {
      server.once('error', () => { resolve(false) })
      server.listen(API_PORT, p3.opts.ip, () => { resolve(true) })
    }), 10_000, 200)
    const again = await run(process.execPath, [SHOAL, 'kubeconfig'], env)
    t.is(again.code, 0, again.stderr)
    t.is(again.stderr, `shoal: left out p3: ${p3.opts.ip}:${API_PORT} presented a certificate with SHA-256 ${certificateFingerprint(fake.cert)}, not the ${fingerprints[p3.name] ?? ''} the member gossips\n`)
    const kept = parseYaml(again.stdout) as { clusters: Array<{ name: string }> }
    t.deepEqual(kept.clusters.map(c => c.name), ['shoal-p1', 'shoal-p2'])
  } finally {
    if (impostor !== undefined) {
      impostor.closeAllConnections()
      impostor.close()
    }
    await stopAll(peers, dir)
  }
})
