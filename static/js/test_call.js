// The test call page: the microphone goes to the agent over our websocket
// (binary PCM16 frames, JSON control messages; the README documents the
// protocol), the agent's audio is played as it arrives, and the transcript,
// each turn's latency and, at the end, the ticket's link are shown.
(function () {
  "use strict";
  const root = document.querySelector("[data-testcall]");
  if (!root) return;
  const startButton = document.getElementById("testcall-start");
  const stopButton = document.getElementById("testcall-stop");
  const status = document.getElementById("testcall-status");
  const result = document.getElementById("testcall-result");
  const transcript = document.getElementById("testcall-transcript");
  const transcriptEmpty = document.getElementById("testcall-transcript-empty");
  const latency = document.getElementById("testcall-latency");
  const rate = Number(root.dataset.sampleRate) || 16000;

  let socket = null;
  let context = null;
  let microphone = null;
  let tap = null;
  let playAt = 0; // when the next agent frame starts, on the AudioContext's clock
  let playing = []; // scheduled sources, stopped on barge-in
  let ended = false;

  function say(text) {
    status.textContent = text;
  }

  function formatSeconds(s) {
    const whole = Math.floor(s);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function addLine(message) {
    transcriptEmpty.hidden = true;
    const item = document.createElement("li");
    item.className = "calls-utterance calls-utterance-" + (message.speaker === "agent" ? "agent" : "caller");
    const at = document.createElement("span");
    at.className = "calls-seek-time";
    at.textContent = formatSeconds(message.start_s || 0);
    const who = document.createElement("span");
    who.className = "calls-speaker";
    who.textContent = message.speaker === "agent" ? "Agent" : "You";
    const said = document.createElement("span");
    said.className = "calls-said";
    said.textContent = message.text + (message.interrupted ? " …" : "");
    item.append(at, who, said);
    transcript.append(item);
  }

  function addLatency(message) {
    const row = document.createElement("tr");
    const cells = [message.turn, message.transcript_ms, message.decision_ms, message.first_audio_ms, message.first_frame_ms];
    cells.forEach(function (value, index) {
      const cell = document.createElement(index === 0 ? "th" : "td");
      if (index === 0) cell.scope = "row";
      else cell.className = "calls-num";
      cell.textContent = String(value);
      row.append(cell);
    });
    latency.append(row);
  }

  function play(buffer) {
    const samples = new Int16Array(buffer);
    if (!samples.length || !context) return;
    const audio = context.createBuffer(1, samples.length, rate);
    const channel = audio.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 0x8000;
    const source = context.createBufferSource();
    source.buffer = audio;
    source.connect(context.destination);
    // A small lead absorbs network jitter without making the agent sound late.
    playAt = Math.max(playAt, context.currentTime + 0.05);
    source.start(playAt);
    playAt += audio.duration;
    playing.push(source);
    source.onended = function () {
      playing = playing.filter(function (s) { return s !== source; });
    };
  }

  function clearPlayback() {
    playing.forEach(function (source) {
      try { source.stop(); } catch (e) { /* already stopped */ }
    });
    playing = [];
    playAt = 0;
  }

  function showEnd(message) {
    ended = true;
    result.hidden = false;
    result.textContent = "";
    if (message.ticket_url) {
      const link = document.createElement("a");
      link.href = message.ticket_url;
      link.textContent = "Open the ticket this call made";
      result.append("The call has ended. ", link, ".");
    } else {
      const link = document.createElement("a");
      link.href = message.call_url;
      link.textContent = "the call's page";
      result.append("The call has ended; its ticket is still being written. It will be linked from ", link, ".");
    }
    say("Call ended.");
  }

  function onMessage(event) {
    if (typeof event.data !== "string") {
      play(event.data);
      return;
    }
    let message;
    try { message = JSON.parse(event.data); } catch (e) { return; }
    if (message.type === "started") {
      say("Connected. Say hello to your agent.");
      openMicrophone();
    }
    else if (message.type === "transcript") addLine(message);
    else if (message.type === "latency") addLatency(message);
    else if (message.type === "clear") clearPlayback();
    else if (message.type === "end") showEnd(message);
    else if (message.type === "error") {
      ended = true;
      say("The call stopped: " + message.reason);
    }
  }

  function teardown() {
    if (microphone) microphone.getTracks().forEach(function (track) { track.stop(); });
    microphone = null;
    if (tap) tap.port.onmessage = null;
    tap = null;
    if (context) context.close();
    context = null;
    playing = [];
    playAt = 0;
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  const AUDIO_CONSTRAINTS = {
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  };

  async function start() {
    startButton.disabled = true;
    ended = false;
    result.hidden = true;
    transcript.replaceChildren();
    latency.replaceChildren();
    transcriptEmpty.hidden = false;
    say("Asking for the microphone…");
    try {
      // Asked now, in the click, so the call does not wait on the browser's question.
      const permission = await navigator.mediaDevices.getUserMedia(AUDIO_CONSTRAINTS);
      permission.getTracks().forEach(function (track) { track.stop(); });
      context = new AudioContext();
      await context.audioWorklet.addModule(root.dataset.workletUrl);
    } catch (error) {
      say("The microphone is not available: " + error.message);
      teardown();
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + root.dataset.socketPath);
    socket.binaryType = "arraybuffer";
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "start", sample_rate: rate }));
      stopButton.disabled = false;
      say("Connecting to your agent…");
    };
    socket.onmessage = onMessage;
    socket.onclose = function (event) {
      if (!ended) say(event.code === 4404 ? "You cannot place test calls for this business." : "Disconnected.");
      socket = null;
      teardown();
    };
  }

  // The microphone streams once the agent is on the line: nothing piles up while the call starts.
  async function openMicrophone() {
    try {
      microphone = await navigator.mediaDevices.getUserMedia(AUDIO_CONSTRAINTS);
    } catch (error) {
      say("The microphone is not available: " + error.message);
      stop();
      return;
    }
    if (!context || !socket) return;
    const input = context.createMediaStreamSource(microphone);
    tap = new AudioWorkletNode(context, "test-call-microphone", { processorOptions: { targetRate: rate } });
    input.connect(tap);
    tap.port.onmessage = function (event) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
  }

  function stop() {
    stopButton.disabled = true;
    if (tap) tap.port.onmessage = null;
    say("Ending the call and writing its ticket…");
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stop" }));
    if (microphone) microphone.getTracks().forEach(function (track) { track.stop(); });
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
})();
