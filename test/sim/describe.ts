// One Raft message as a compact line, for simulation traces and the golden
// traces of the scripted tests.
// May import: protocol/.
import type { RaftMessage } from '../../protocol/raft.ts'

export function describeMessage (m: RaftMessage): string {
  const head = `${m.type} ${m.from}>${m.to} t${m.term}`
  switch (m.type) {
    case 'vote': return `${head}${m.preVote ? ' pre' : ''}${m.transfer === true ? ' transfer' : ''} last=${m.lastLogIndex}@${m.lastLogTerm}`
    case 'vote-response': return `${head}${m.preVote ? ' pre' : ''} ${m.granted ? 'granted' : 'refused'}`
    case 'append': return `${head} prev=${m.prevLogIndex}@${m.prevLogTerm} n=${m.entries.length} commit=${m.commit}${m.read !== undefined ? ` read=${m.read}` : ''}`
    case 'append-response': return m.success
      ? `${head} match=${m.matchIndex}${m.read !== undefined ? ` read=${m.read}` : ''}`
      : `${head} rejected=${m.rejectedIndex} hint=${m.hint.conflictIndex}@${m.hint.conflictTerm ?? '-'}`
    case 'timeout-now': return head
    case 'snapshot': return `${head} snap=${m.meta.index}@${m.meta.term}`
  }
}
