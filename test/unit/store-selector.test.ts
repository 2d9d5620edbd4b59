// Label and field selectors: the string syntax (a table of cases), bad syntax, and structured LabelSelectors.
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { formatLabelSelector, matchLabelSelector, parseFieldSelector, parseLabelSelector } from '../../protocol/selector.ts'
import { BadSelectorError } from '../../protocol/selector.ts'

const labels = { app: 'web', tier: 'front', 'example.com/env': 'prod' }

const cases: Array<[string, boolean]> = [
  ['', true],
  ['app=web', true],
  ['app==web', true],
  ['app=db', false],
  ['app!=db', true],
  ['app!=web', false],
  ['missing!=x', true],
  ['app in (web,db)', true],
  ['app in (db, cache)', false],
  ['app notin (db,cache)', true],
  ['app notin (web)', false],
  ['missing notin (web)', true],
  ['missing in (web)', false],
  ['app', true],
  ['missing', false],
  ['!missing', true],
  ['!app', false],
  ['example.com/env=prod', true],
  ['app=web,tier=front', true],
  ['app=web,tier=back', false],
  [' app = web , tier in (front) , !legacy ', true],
  ['app=', false]
]

for (const [selector, expected] of cases) {
  test(`label selector "${selector}" ${expected ? 'matches' : 'does not match'}`, t => {
    t.is(parseLabelSelector(selector)(labels), expected)
  })
}

const bad = ['app in web', 'app in (web', '=web', 'app=web,', 'app=we b', 'bad key!=x', 'app < 3', 'a,,b']
for (const selector of bad) {
  test(`label selector "${selector}" is a BadSelectorError`, t => {
    t.throws(() => parseLabelSelector(selector), { instanceOf: BadSelectorError })
  })
}

const pod: KObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' }, spec: { nodeName: 'n1' }, status: { phase: 'Running' } }

test('field selectors', t => {
  t.true(parseFieldSelector('metadata.name=p', 'Pod')(pod))
  t.true(parseFieldSelector('metadata.name==p,metadata.namespace=ns', 'Pod')(pod))
  t.false(parseFieldSelector('spec.nodeName!=n1', 'Pod')(pod))
  t.true(parseFieldSelector('spec.nodeName=n1,status.phase!=Pending', 'Pod')(pod))
  t.true(parseFieldSelector('spec.nodeName=', 'Pod')({ ...pod, spec: {} }))
  t.true(parseFieldSelector('', 'Pod')(pod))
  t.throws(() => parseFieldSelector('spec.image=x', 'Pod'), { instanceOf: BadSelectorError })
  t.throws(() => parseFieldSelector('metadata.name', 'Pod'), { instanceOf: BadSelectorError })
  t.true(parseFieldSelector('involvedObject.name=p', 'Event')({ apiVersion: 'v1', kind: 'Event', metadata: { name: 'e' }, involvedObject: { name: 'p' } }))
})

test('structured label selectors', t => {
  t.true(matchLabelSelector({ matchLabels: { app: 'web' } }, labels))
  t.false(matchLabelSelector({ matchLabels: { app: 'web', x: 'y' } }, labels))
  t.true(matchLabelSelector({}, labels))
  t.true(matchLabelSelector({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }, { key: 'legacy', operator: 'DoesNotExist' }] }, labels))
  t.false(matchLabelSelector({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, labels))
  t.false(matchLabelSelector({ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, undefined))
  t.false(matchLabelSelector({ matchExpressions: [{ key: 'app', operator: 'Bogus' }] }, labels))
  const sel = { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }, { key: 'old', operator: 'DoesNotExist' }] }
  t.is(formatLabelSelector(sel), 'app=web,tier in (front,back),!old')
  t.true(parseLabelSelector(formatLabelSelector(sel))(labels))
})
