"use strict";
// The worker's web UI: fills the choices from /api/voices, posts to /tts and plays the
// audio as it streams in (WAV, through Web Audio, chunk by chunk), then keeps the whole
// WAV for the player and the download. MP3 is fetched whole. Chinese by default; the
// language button switches to English and is remembered.
(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), count = $("count"), max = $("max"), counter = count.parentElement;
  const voice = $("voice"), emotion = $("emotion"), format = $("format");
  const speed = $("speed"), speedValue = $("speed-value"), lang = $("lang");
  const button = $("synthesise"), status = $("status"), player = $("player"), download = $("download");
  let maxChars = 500;
  let objectUrl = null;
  let catalog = null;
  let playback = null;  // the AudioContext of the stream playing now
  let language = localStorage.getItem("tts-language") === "en" ? "en" : "zh-CN";
  const words = () => window.TTS_I18N[language];

  function applyLanguage() {
    document.documentElement.lang = language;
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      const value = words()[node.dataset.i18n];
      if (typeof value === "string") node.textContent = value;
    });
    document.title = `elastic-tts · ${words().title}`;
    lang.textContent = words().switchTo;
    lang.lang = language === "en" ? "zh-CN" : "en";
    if (catalog) fillChoices();
  }

  function fill(select, values, chosen, names) {
    const keep = select.value || chosen;
    select.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = names[value] || value;
      option.selected = value === keep;
      return option;
    }));
  }

  function fillChoices() {
    fill(voice, catalog.voices, catalog.default_voice, words().voices);
    fill(emotion, catalog.emotions, catalog.default_emotion, words().emotions);
    fill(format, catalog.formats.filter((f) => f !== "pcm"), "wav", {});
    $("engine").textContent = words().engine(catalog.engine, catalog.device);
  }

  function updateCount() {
    const n = Array.from(text.value).length;  // code points, as the server counts
    count.textContent = String(n);
    counter.classList.toggle("over", n > maxChars);
  }

  function say(message, isError) {
    status.textContent = message;
    status.classList.toggle("error", Boolean(isError));
  }

  function clearResult() {
    if (playback) { playback.close().catch(() => {}); playback = null; }
    if (objectUrl) { URL.revokeObjectURL(objectUrl); objectUrl = null; }
    player.pause();
    player.removeAttribute("src");
    player.load();
    download.hidden = true;
    download.removeAttribute("href");
  }

  function keepResult(blob, extension) {
    objectUrl = URL.createObjectURL(blob);
    player.src = objectUrl;
    download.href = objectUrl;
    download.download = `speech.${extension}`;
    download.hidden = false;
  }

  async function errorMessage(response) {
    let payload = null;
    try { payload = await response.json(); } catch (_) { /* not JSON */ }
    const translate = payload && words().errors[payload.error];
    if (translate) return translate(payload);
    return (payload && payload.message) || words().http(response.status);
  }

  function wavHeader(sampleRate, dataBytes) {
    const view = new DataView(new ArrayBuffer(44));
    const ascii = (at, s) => { for (let i = 0; i < 4; i++) view.setUint8(at + i, s.charCodeAt(i)); };
    ascii(0, "RIFF"); view.setUint32(4, 36 + dataBytes, true); ascii(8, "WAVE");
    ascii(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
    view.setUint16(22, 1, true); view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * 2, true); view.setUint16(32, 2, true);
    view.setUint16(34, 16, true); ascii(36, "data"); view.setUint32(40, dataBytes, true);
    return view.buffer;
  }

  // Plays a streamed WAV as it arrives: 16-bit mono PCM after the 44-byte header, each
  // piece scheduled right after the one before.
  async function playStream(response, started) {
    const reader = response.body.getReader();
    const context = new AudioContext();
    playback = context;
    let header = new Uint8Array(0), sampleRate = 0, carry = null, next = 0;
    const pcm = [];
    window.ttsScheduled = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let bytes = value;
      if (!sampleRate) {
        const joined = new Uint8Array(header.length + bytes.length);
        joined.set(header); joined.set(bytes, header.length);
        if (joined.length < 44) { header = joined; continue; }
        sampleRate = new DataView(joined.buffer).getUint32(24, true);
        bytes = joined.subarray(44);
      }
      if (carry !== null) {
        const joined = new Uint8Array(bytes.length + 1);
        joined[0] = carry; joined.set(bytes, 1); bytes = joined; carry = null;
      }
      if (bytes.length % 2) { carry = bytes[bytes.length - 1]; bytes = bytes.subarray(0, bytes.length - 1); }
      if (!bytes.length) continue;
      pcm.push(bytes.slice());
      const samples = new Int16Array(bytes.slice().buffer);
      const buffer = context.createBuffer(1, samples.length, sampleRate);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      next = Math.max(next, context.currentTime + 0.05);
      source.start(next);
      next += buffer.duration;
      if (window.ttsScheduled++ === 0) window.ttsFirstAudioAt = performance.now() - started;
    }
    window.ttsStreamDoneAt = performance.now() - started;
    const size = pcm.reduce((n, part) => n + part.length, 0);
    return { blob: new Blob([wavHeader(sampleRate, size), ...pcm], { type: "audio/wav" }),
             seconds: size / 2 / (sampleRate || 1) };
  }

  async function synthesise(event) {
    if (event) event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    clearResult();
    say(words().working);
    const started = performance.now();
    const stream = format.value === "wav";
    try {
      const response = await fetch("/tts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          text: text.value, voice: voice.value, emotion: emotion.value,
          speed: Number(speed.value), format: format.value, stream,
        }),
      });
      if (!response.ok) {
        say(await errorMessage(response), true);
        return;
      }
      const cached = response.headers.get("X-Cache") === "hit";
      let result;
      if (stream) {  // a cache hit comes whole, as a plain WAV: played the same way
        result = await playStream(response, started);
      } else {
        const blob = await response.blob();
        result = { blob, seconds: Number(response.headers.get("X-Audio-Duration")) };
        window.ttsFirstAudioAt = performance.now() - started;
      }
      keepResult(result.blob, format.value);
      const total = performance.now() - started;
      say(words().done((window.ttsFirstAudioAt || total).toFixed(0), total.toFixed(0),
                       result.seconds.toFixed(2), cached));
      if (!stream) player.play().catch(() => { /* autoplay may be blocked; the controls remain */ });
    } catch (error) {
      clearResult();
      say(words().failed(error), true);
    } finally {
      button.disabled = false;
    }
  }

  async function loadCatalog() {
    const response = await fetch("/api/voices");
    catalog = await response.json();
    maxChars = catalog.max_chars;
    max.textContent = String(maxChars);
    speed.min = String(catalog.speed.min);
    speed.max = String(catalog.speed.max);
    speed.disabled = catalog.speed.min === catalog.speed.max;
    fillChoices();
    updateCount();
  }

  lang.addEventListener("click", () => {
    language = language === "en" ? "zh-CN" : "en";
    localStorage.setItem("tts-language", language);
    applyLanguage();
  });
  text.addEventListener("input", updateCount);
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) synthesise(event);
  });
  speed.addEventListener("input", () => { speedValue.textContent = Number(speed.value).toFixed(1); });
  $("form").addEventListener("submit", synthesise);
  applyLanguage();
  loadCatalog().catch((error) => say(words().noCatalog(error), true));
})();
