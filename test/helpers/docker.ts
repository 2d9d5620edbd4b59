// A real Docker engine for tests: found at DOCKER_HOST (else the default
// socket), with the test image shoal-test/busybox:1 made from the host's
// busybox if it is missing (no registry can be reached). Outside CI a
// missing engine skips the Docker tests; in CI (CI=true) it fails them,
// saying why. `.ci/docker-engine` starts such an engine.
import { existsSync } from 'node:fs'
import Docker from 'dockerode'
import { pack } from 'tar-stream'
import type { TestFn } from 'ava'

export const TEST_IMAGE = 'shoal-test/busybox:1'
const APPLETS = ['sh', 'ls', 'cat', 'echo', 'sleep', 'httpd', 'wget', 'nc', 'hostname', 'ip', 'true', 'false', 'ps', 'kill', 'env', 'id', 'mkdir', 'rm', 'test', 'grep']

export interface Engine { docker: Docker, where: string }

/** The engine and its test image, or why there is none. */
export async function findEngine (): Promise<{ engine: Engine } | { why: string }> {
  const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'
  const docker = new Docker()
  try {
    await Promise.race([docker.ping(), new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('no answer within 3 s')) }, 3000).unref())])
  } catch (err) {
    return { why: `no Docker engine answers at ${where} (${(err as Error).message}); start one with .ci/docker-engine start DIR and set DOCKER_HOST` }
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect()
  } catch {
    const busybox = ['/bin/busybox', '/usr/bin/busybox'].find(p => existsSync(p))
    if (busybox === undefined) return { why: `the engine at ${where} has no ${TEST_IMAGE} and there is no busybox to make it (apt-get install busybox-static)` }
    await importBusybox(docker, busybox)
  }
  return { engine: { docker, where } }
}

async function importBusybox (docker: Docker, busybox: string): Promise<void> {
  const { readFileSync } = await import('node:fs')
  const p = pack()
  p.entry({ name: 'bin/busybox', mode: 0o755 }, readFileSync(busybox))
  for (const a of APPLETS) p.entry({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })
  p.entry({ name: 'tmp', type: 'directory', mode: 0o1777 })
  p.entry({ name: 'etc/passwd' }, 'root:x:0:0:root:/root:/bin/sh\n')
  p.finalize()
  const [repo, tag] = TEST_IMAGE.split(':')
  const stream = await docker.importImage(p as unknown as NodeJS.ReadableStream, { repo, tag, changes: ['ENV PATH=/bin'] })
  await new Promise<void>((resolve, reject) => { docker.modem.followProgress(stream, err => { if (err !== null) reject(err); else resolve() }) })
}

/**
 * The test function for Docker tests: test.serial with an engine; without
 * one, test.serial.skip outside CI, and in CI one failing test that says why.
 */
export async function dockerTests (test: TestFn): Promise<{ dtest: TestFn['serial'], engine: Engine | undefined }> {
  const found = await findEngine()
  if ('engine' in found) return { dtest: test.serial, engine: found.engine }
  if (process.env.CI === 'true') test('a Docker engine answers', t => { t.fail(found.why) })
  return { dtest: test.serial.skip as unknown as TestFn['serial'], engine: undefined }
}

/** Removes every container labelled for `node`, and its pod network. */
export async function removeNode (docker: Docker, node: string): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${node}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)
  }
  await docker.getNetwork(`shoal-${node}`).remove().catch(() => undefined)
}

/** A node's containers for a pod, sandbox included. */
export async function containersOf (docker: Docker, node: string, podUid: string): Promise<Docker.ContainerInfo[]> {
  return await docker.listContainers({ all: true, filters: { label: [`shoal.node=${node}`, `shoal.pod.uid=${podUid}`] } })
}
