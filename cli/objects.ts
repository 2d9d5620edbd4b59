// Objects from the server as the kinds they are. An answer is decoded once
// (kube.ts checks that it is an object with metadata); a command that knows
// the kind it asked for then takes it as that kind here, by its apiVersion
// and kind, and reads its fields through the types. The fields themselves
// are not checked: what reads them tolerates malformed values (the cell
// helpers of protocol/k8s-columns.ts) or checks what it relies on.
// May import: protocol/.
import { apiVersionOf, isOfType } from '../protocol/k8s.ts'
import type { KObject, ResourceType } from '../protocol/k8s.ts'

/** `o`, fetched or listed as `type`, as that kind: apiVersion and kind are set from the type (list items may lack them). */
export function withKind<T extends KObject> (type: ResourceType<T>, o: KObject): T {
  const typed = { ...o, apiVersion: apiVersionOf(type), kind: type.kind }
  if (!isOfType(type, typed)) throw new Error(`${type.kind}: not of its own kind`) // cannot happen: set just above
  return typed
}
