// Majority arithmetic over one voter set. Joint consensus (membership
// changes) will wrap these over two sets.
// May import: nothing of ours.

export type VoteResult = 'won' | 'lost' | 'pending'

export function quorum (voters: number): number {
  return Math.floor(voters / 2) + 1
}

/** The highest index that a majority of voters hold. */
export function committedIndex (voters: readonly string[], matchIndex: (id: string) => number): number {
  if (voters.length === 0) return 0
  const sorted = voters.map(matchIndex).sort((a, b) => b - a)
  return sorted[quorum(voters.length) - 1] as number
}

/** Won once a majority grant, lost once a majority refuse; voters not yet heard count as neither. */
export function voteResult (voters: readonly string[], votes: ReadonlyMap<string, boolean>): VoteResult {
  let granted = 0
  let refused = 0
  for (const id of voters) {
    const v = votes.get(id)
    if (v === true) granted++
    else if (v === false) refused++
  }
  const q = quorum(voters.length)
  if (granted >= q) return 'won'
  if (refused >= q) return 'lost'
  return 'pending'
}
