// Playback AudioWorklet with a jitter buffer. Converted blocks queue here; playback starts `bufferSamples` after
// the first block arrives (and again after every underrun), so a block may arrive that much later than the first
// one did without a gap. An underrun (the queue runs dry while playing) plays silence, is counted, and makes the
// buffer GROW_MS longer (up to MAX_BUFFER_MS): the buffer adapts to the jitter of this machine and network. When
// the queue stays above the buffer plus two blocks for SKIP_AFTER_S (the backlog of a stall), whole old blocks are
// skipped to bring the latency back (counted). For every block the frame of its first sample is reported, for the
// playback stamp.
const GROW_MS = 20;
const MAX_BUFFER_MS = 400;
const SKIP_AFTER_S = 1.0;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];  // {seq, samples, offset}
    this.queued = 0;  // samples in the queue
    this.bufferSamples = 2400;
    this.blockSamples = 4800;
    this.playing = false;
    this.startAt = -1;  // frame at which playback (re)starts, -1: waiting for a block
    this.dry = false;  // ran dry while playing and not refilled yet
    this.active = false;  // false after "stop": the queue running dry then is the end, not an underrun
    this.c = { underruns: 0, underrunSamples: 0, playedSamples: 0, receivedSamples: 0, skippedSamples: 0 };
    this.stamps = [];
    this.lastPost = 0;
    this.highSince = -1;  // frame since which the queue is above the skip threshold
    this.port.onmessage = (event) => {
      const m = event.data;
      if (m.type === "config") {
        this.bufferSamples = m.bufferSamples;
        this.blockSamples = m.blockSamples;
        this.active = true;
      } else if (m.type === "block") {
        if (!m.samples.length) return;  // the engine held this block's input: nothing to play, nothing to stamp
        this.queue.push({ seq: m.seq, samples: m.samples, offset: 0 });
        this.queued += m.samples.length;
        this.c.receivedSamples += m.samples.length;
      } else if (m.type === "stop") {
        this.active = false;
      } else if (m.type === "reset") {
        this.queue = []; this.queued = 0; this.playing = false; this.startAt = -1; this.dry = false;
      }
    };
  }

  skipBacklog() {
    const high = this.bufferSamples + 2 * this.blockSamples;
    if (this.queued <= high) { this.highSince = -1; return; }
    if (this.highSince < 0) this.highSince = currentFrame;
    if (currentFrame - this.highSince < SKIP_AFTER_S * sampleRate) return;
    this.highSince = -1;
    while (this.queue.length > 1 && this.queued > this.bufferSamples + this.blockSamples) {
      const head = this.queue.shift();
      const left = head.samples.length - head.offset;
      this.queued -= left;
      this.c.skippedSamples += left;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    if (!this.playing) {
      if (this.dry && this.active) this.c.underrunSamples += out.length;  // silence of an underrun, until refilled
      if (this.queue.length && this.startAt < 0) this.startAt = currentFrame + this.bufferSamples;
      if (this.startAt >= 0 && currentFrame + out.length > this.startAt) {
        this.playing = true; this.startAt = -1; this.dry = false;
      }
    }
    if (this.playing) {
      this.skipBacklog();
      let i = 0;
      while (i < out.length && this.queue.length) {
        const head = this.queue[0];
        if (head.offset === 0) this.stamps.push([head.seq, currentFrame + i]);
        const n = Math.min(out.length - i, head.samples.length - head.offset);
        out.set(head.samples.subarray(head.offset, head.offset + n), i);
        head.offset += n; i += n; this.queued -= n; this.c.playedSamples += n;
        if (head.offset === head.samples.length) this.queue.shift();
      }
      if (i < out.length) {  // ran dry
        this.playing = false;
        if (this.active) {
          this.c.underruns += 1; this.c.underrunSamples += out.length - i; this.dry = true;
          this.bufferSamples = Math.min(this.bufferSamples + GROW_MS / 1000 * sampleRate, MAX_BUFFER_MS / 1000 * sampleRate);
        }
      }
    }
    for (let ch = 1; ch < outputs[0].length; ch++) outputs[0][ch].set(out);
    if (currentFrame - this.lastPost >= 2048 || this.stamps.length >= 8) {
      this.lastPost = currentFrame;
      this.port.postMessage({ type: "played", stamps: this.stamps, counters: this.c, queued: this.queued,
                              buffer: this.bufferSamples });
      this.stamps = [];
    }
    return true;
  }
}

registerProcessor("svc-playback", PlaybackProcessor);
