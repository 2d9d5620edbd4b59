// The Services view: each Service's type, cluster IP and ports, with the
// ready addresses of its Endpoints. Both from watches.
// May import: ./ui.js.
import { ErrorNote, Table, age, html, useFollow, useNow } from './ui.js'

const portText = (/** @type {any} */ p) =>
  `${p.name ? `${p.name} ` : ''}${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'} → ${p.targetPort ?? p.port}`

/** Ready and not-ready addresses of an Endpoints object, as ip:port. */
function endpointsText (/** @type {any} */ ep) {
  const ready = []
  let notReady = 0
  for (const s of ep?.subsets ?? []) {
    const ports = (s.ports ?? []).map(p => p.port)
    for (const a of s.addresses ?? []) ready.push(ports.length > 0 ? ports.map(p => `${a.ip}:${p}`).join(', ') : a.ip)
    notReady += (s.notReadyAddresses ?? []).length
  }
  return { ready, notReady }
}

export function ServicesView () {
  const now = useNow(5000)
  const services = useFollow('/api/v1/services')
  const endpoints = useFollow('/api/v1/endpoints')
  const epBy = new Map(endpoints.items.map(e => [`${e.metadata.namespace}/${e.metadata.name}`, e]))
  const sorted = [...services.items].sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))
  return html`<section aria-labelledby="services-h">
    <h1 id="services-h">Services</h1>
    <${ErrorNote} error=${services.error ?? endpoints.error} />
    <${Table} caption=${`Services (${sorted.length})`} head=${['Name', 'Namespace', 'Type', 'Cluster IP', 'Ports', 'Endpoints', 'Age']} empty=${services.synced && sorted.length === 0}>
      ${sorted.map(s => {
        const ep = endpointsText(epBy.get(`${s.metadata.namespace}/${s.metadata.name}`))
        return html`<tr>
          <th scope="row">${s.metadata.name}</th>
          <td>${s.metadata.namespace}</td>
          <td>${s.spec?.type ?? 'ClusterIP'}</td>
          <td>${s.spec?.clusterIP ?? '—'}</td>
          <td>${(s.spec?.ports ?? []).map(p => html`<div>${portText(p)}</div>`)}</td>
          <td>${ep.ready.length === 0 ? html`<span class="muted">none ready</span>` : ep.ready.map(a => html`<div>${a}</div>`)}${ep.notReady > 0 ? html`<div class="muted">${ep.notReady} not ready</div>` : null}</td>
          <td>${age(s.metadata.creationTimestamp, now)}</td>
        </tr>`
      })}
    <//>
  </section>`
}
