// Byte plumbing for the proxy and the tunnel: a TCP dial with a time limit,
// splicing two duplexes together, and a libp2p 3 stream as a Node Duplex,
// so that tunnelled connections pipe like sockets: back-pressure both ways (a full Duplex pauses the stream,
// which stops Yamux's window updates; a full stream holds the writer until
// it drains), half-close both ways (ending the Duplex closes the stream's
// write side; the remote closing its write side ends the Duplex), and
// destroying the Duplex resets the stream.
// May import: daemon/clock.
import { connect, Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'
import type { Clock } from '../clock/clock.ts'

/**
 * While paused, a stream still buffers what the remote may send within its
 * Yamux window (up to 16 MiB); libp2p's default limit of 4 MiB would reset
 * a paused stream whose window had grown, so the limit is set above it.
 */
const MAX_READ_BUFFER_BYTES = 24 * 1024 * 1024

/**
 * A writer waits while more than this is queued in the stream. (Waiting
 * for `send()` to return true is not enough: a stream emits 'drain' on
 * every Yamux window update while it has bytes queued, however few the
 * update allows, so a writer that resumes on 'drain' grows the queue
 * without bound when the reader is slower.)
 */
const WRITE_BUFFER_LOW = 256 * 1024

/** Resolves once the stream's queue is down to WRITE_BUFFER_LOW; rejects if it closes first. */
async function drained (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      // the stream sends what a window update allows in a microtask after 'drain'
      queueMicrotask(() => {
        if (stream.writeBufferLength > WRITE_BUFFER_LOW) return
        done()
        resolve()
      })
    }
    const onClose = (evt: Event): void => {
      done()
      reject((evt as Event & { error?: Error }).error ?? new Error('the tunnel closed while writing'))
    }
    const done = (): void => {
      stream.removeEventListener('drain', check)
      stream.removeEventListener('idle', check)
      stream.removeEventListener('close', onClose)
    }
    stream.addEventListener('drain', check)
    stream.addEventListener('idle', check)
    stream.addEventListener('close', onClose)
    check()
  })
}

function setPaused (stream: Stream, paused: boolean): void {
  // a stream whose read side has closed refuses both; nothing to do then
  try {
    if (paused) stream.pause()
    else stream.resume()
  } catch {}
}

export function streamDuplex (stream: Stream): Duplex {
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, MAX_READ_BUFFER_BYTES)
  let ended = false
  const duplex = new Duplex({
    allowHalfOpen: true,
    read () { setPaused(stream, false) },
    write (chunk: Buffer, _encoding, callback) {
      try {
        stream.send(chunk)
      } catch (err) {
        callback(err as Error)
        return
      }
      if (stream.writeBufferLength <= WRITE_BUFFER_LOW) callback()
      else drained(stream).then(() => { callback() }, (err: unknown) => { callback(err as Error) })
    },
    final (callback) {
      stream.close().then(() => { callback() }, (err: unknown) => { callback(err as Error) })
    },
    destroy (err, callback) {
      cleanup()
      // A clean finish both ways leaves the stream closed; anything else resets it.
      const clean = err === null && duplex.writableFinished && duplex.readableEnded
      if (!clean && (stream.status === 'open' || stream.status === 'closing')) stream.abort(err ?? new Error('the tunnel was closed'))
      callback(err)
    }
  })
  const onMessage = (evt: { data: Uint8Array | Iterable<Uint8Array> }): void => {
    let more = true
    if (evt.data instanceof Uint8Array) more = duplex.push(evt.data)
    else for (const chunk of evt.data) more = duplex.push(chunk)
    if (!more) setPaused(stream, true)
  }
  const onEnd = (): void => {
    if (ended) return
    ended = true
    duplex.push(null)
  }
  const onClose = (evt: Event): void => {
    const error = (evt as Event & { error?: Error }).error
    if (error !== undefined) duplex.destroy(error)
    else if (stream.readBufferLength === 0) onEnd() // else 'end' follows the buffered bytes
  }
  function cleanup (): void {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  if (stream.readableEnded) onEnd()
  return duplex
}

/** Opens a TCP connection (half-open allowed), failing after `timeoutMs`. */
export async function connectTcp (ip: string, port: number, timeoutMs: number, clock: Clock): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, allowHalfOpen: true, noDelay: true })
    const timer = clock.setTimeout(() => {
      socket.destroy()
      reject(new Error(`connect ETIMEDOUT ${ip}:${port} (no answer in ${timeoutMs} ms)`))
    }, timeoutMs)
    socket.once('connect', () => {
      clock.clearTimeout(timer)
      socket.removeListener('error', onError)
      resolve(socket)
    })
    const onError = (err: Error): void => {
      clock.clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.once('error', onError)
  })
}

/** Tears a duplex down; a TCP socket with an RST, so its peer sees a reset and not an orderly end. */
export function reset (s: Duplex): void {
  if (s.destroyed) return
  if (s instanceof Socket) {
    try {
      s.resetAndDestroy()
      return
    } catch {}
  }
  s.destroy()
}

/**
 * Pipes `a` and `b` into each other with back-pressure. An end travels
 * across as a half-close. Either side failing, or closing before both of
 * its directions finished, resets the other; `onDone` is called once, when
 * both have closed, with the first error if there was one.
 */
export function splice (a: Duplex, b: Duplex, onDone?: (err?: Error) => void): void {
  let failure: Error | undefined
  let open = 2
  const fail = (err: Error): void => {
    failure ??= err
    reset(a)
    reset(b)
  }
  for (const [self, other] of [[a, b], [b, a]] as const) {
    self.on('error', fail)
    self.once('close', () => {
      if (!self.readableEnded || !self.writableFinished) {
        failure ??= new Error('closed before the end of the stream')
        reset(other)
      }
      if (--open === 0) onDone?.(failure)
    })
    self.pipe(other)
  }
}
