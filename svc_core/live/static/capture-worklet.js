// Capture AudioWorklet: cuts the microphone's first channel into blocks of `blockSamples` and posts each block
// with the AudioContext frame of its first sample (the page maps that frame to its clock for the capture stamp).
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.blockSamples = 0;  // set by the page once the server said how long a block is
    this.block = null;
    this.filled = 0;
    this.firstFrame = 0;
    this.port.onmessage = (event) => {
      if (event.data.type === "config") {
        this.blockSamples = event.data.blockSamples;
        this.block = new Float32Array(this.blockSamples);
        this.filled = 0;
      } else if (event.data.type === "stop") {
        this.blockSamples = 0;
        this.block = null;
      }
    };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!this.block || !channel) return true;
    let i = 0;
    while (i < channel.length) {
      if (this.filled === 0) this.firstFrame = currentFrame + i;
      const n = Math.min(channel.length - i, this.blockSamples - this.filled);
      this.block.set(channel.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === this.blockSamples) {
        this.port.postMessage({ type: "block", frame: this.firstFrame, samples: this.block }, [this.block.buffer]);
        this.block = new Float32Array(this.blockSamples);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("svc-capture", CaptureProcessor);
