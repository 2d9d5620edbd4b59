// The layout of `shoal describe`, as kubectl's describe prints it: each
// `Label:<TAB>value` line goes through a tab writer that puts the values of
// consecutive labelled lines two spaces after the longest label (kubectl's
// tabwriter, padding 2); maps one entry a line; indented blocks; a pod
// template's labels and containers; conditions; a workload's pods by phase;
// times in RFC 1123 form with a numeric zone, as kubectl prints them.
// Pure functions, shared by ./printers.ts and ./describe-workloads.ts.
// May import: protocol/, ./output.ts.
import type { Container, Pod, PodTemplateSpec } from '../protocol/core-v1.ts'
import { num, objectsOf, str } from '../protocol/k8s-columns.ts'
import type { KObject } from '../protocol/k8s.ts'
import { renderTable } from './output.ts'

/** A value on one line: a tab or a line break in it would break the layout. */
function flat (v: string): string {
  return v.replace(/[\t\r\n]+/g, ' ')
}

/** `Label:<TAB>value`, `level` steps of two spaces in. */
export function line (label: string, value: string | number | undefined, level = 0): string {
  return `${'  '.repeat(level)}${label}:\t${flat(str(value))}\n`
}

/** A map one `key=value` a line, sorted, the label on the first; `<none>` when empty. */
export function mapLines (label: string, m: Record<string, string> | undefined, level = 0): string {
  const entries = Object.entries(m ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  const at = '  '.repeat(level)
  if (entries.length === 0) return `${at}${label}:\t<none>\n`
  return entries.map(([k, v], i) => `${at}${i === 0 ? `${label}:` : ''}\t${flat(`${k}=${String(v)}`)}\n`).join('')
}

export function indent (text: string, by: string): string {
  return text.trimEnd().split('\n').map(l => `${by}${l}`).join('\n') + '\n'
}

/**
 * kubectl's tab writer over the whole text: in each run of consecutive lines
 * that have a tab, the text before the first tab is padded to the longest
 * such prefix plus two spaces. Lines without a tab are left as they are.
 */
export function alignTabs (text: string): string {
  const out: string[] = []
  let run: string[] = []
  const flush = (): void => {
    const width = Math.max(...run.map(l => l.indexOf('\t'))) + 2
    for (const l of run) out.push((l.slice(0, l.indexOf('\t')).padEnd(width) + l.slice(l.indexOf('\t') + 1)).trimEnd())
    run = []
  }
  for (const l of text.split('\n')) {
    if (l.includes('\t')) { run.push(l); continue }
    if (run.length > 0) flush()
    out.push(l)
  }
  if (run.length > 0) flush()
  return out.join('\n')
}

/** An RFC 3339 time as kubectl's describe prints it (RFC 1123 with a numeric zone, here UTC). */
export function timeText (iso: unknown): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN
  return Number.isNaN(t) ? str(iso, '<unset>') : new Date(t).toUTCString().replace(/GMT$/, '+0000')
}

export function containersText (containers: readonly Container[] | undefined): string {
  const list = objectsOf(containers)
  if (list.length === 0) return 'Containers:\t<none>\n'
  let out = 'Containers:\n'
  for (const c of list) {
    out += `  ${str(c.name)}:\n` + line('Image', c.image, 2)
    const ports = objectsOf(c.ports).map(p => `${num(p.containerPort)}/${str(p.protocol, 'TCP')}`)
    if (ports.length > 0) out += line('Port', ports.join(', '), 2)
    const command = Array.isArray(c.command) ? c.command.map(String) : []
    if (command.length > 0) out += '    Command:\n' + command.map(a => `      ${flat(a)}\n`).join('')
    const env = objectsOf(c.env)
    if (env.length > 0) out += '    Environment:\n' + env.map(e => line(str(e.name), str(e.value, ''), 3)).join('')
  }
  return out
}

/** kubectl's `Pod Template:` block: the template's labels and containers. */
export function podTemplateText (template: PodTemplateSpec | undefined): string {
  return 'Pod Template:\n' + mapLines('Labels', template?.metadata?.labels, 1) + indent(containersText(template?.spec?.containers), '  ')
}

/** A pod's, node's or workload's conditions. */
interface Condition { type: string, status: string, reason?: string }

export function conditionsText (conditions: readonly Condition[] | undefined): string {
  const list = objectsOf(conditions)
  if (list.length === 0) return ''
  return 'Conditions:\n' + indent(renderTable(['Type', 'Status', 'Reason'], list.map(c => [str(c.type), str(c.status), str(c.reason)])), '  ')
}

/** `Controlled By:  CronJob/nightly`, or nothing for an object without a controller. */
export function controlledByLine (o: KObject): string {
  const ref = objectsOf(o.metadata.ownerReferences).find(r => r.controller === true)
  return ref === undefined ? '' : line('Controlled By', `${str(ref.kind)}/${str(ref.name)}`)
}

/** kubectl's `Pods Status:  2 Running / 1 Waiting / 0 Succeeded / 0 Failed` of a workload's pods. */
export function podsStatusLine (pods: readonly Pod[]): string {
  const count = (phase: string): number => pods.filter(p => p.status?.phase === phase).length
  return line('Pods Status', `${count('Running')} Running / ${count('Pending')} Waiting / ${count('Succeeded')} Succeeded / ${count('Failed')} Failed`)
}
