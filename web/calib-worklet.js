// calib-worklet.js — the microphone's samples for calibrate.js, in blocks of 2048 with the
// AudioContext time of their first sample. An AudioWorklet module (loaded from this origin).
class Tap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(2048);
    this.fill = 0;
    this.start = 0;
  }

  process(inputs) {
    const ch = inputs[0]?.[0];
    if (ch) {
      for (let i = 0; i < ch.length; i += 1) {
        if (this.fill === 0) this.start = currentTime + i / sampleRate;
        this.block[this.fill] = ch[i];
        this.fill += 1;
        if (this.fill === this.block.length) {
          this.port.postMessage({ time: this.start, samples: this.block }, [this.block.buffer]);
          this.block = new Float32Array(2048);
          this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('tutti-tap', Tap);
