// The test call's microphone tap: runs on the audio thread, takes the
// microphone at the AudioContext's rate, low-passes and downsamples it to the
// call's rate, and posts 20 ms frames of 16-bit little-endian PCM to the page.
//
// Downsampling averages the input samples that fall in each output sample's
// span (a box filter): cheap, and it keeps the aliasing of speech well below
// what the recogniser notices.
class TestCallMicrophone extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const target = (options.processorOptions && options.processorOptions.targetRate) || 16000;
    this.step = sampleRate / target; // input samples per output sample (>= 1)
    this.frame = new Int16Array(Math.round(target / 50)); // 20 ms
    this.filled = 0;
    this.position = 0; // where the next output sample starts, in input samples
    this.sum = 0;
    this.count = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.position -= this.step;
        const value = Math.max(-1, Math.min(1, this.sum / this.count));
        this.frame[this.filled++] = value < 0 ? value * 0x8000 : value * 0x7fff;
        this.sum = 0;
        this.count = 0;
        if (this.filled === this.frame.length) {
          // Little-endian on every platform browsers run on; the server reads "<i2".
          const out = this.frame.slice();
          this.port.postMessage(out.buffer, [out.buffer]);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("test-call-microphone", TestCallMicrophone);
