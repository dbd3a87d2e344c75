"use strict";
// The worker's web UI: fills the choices from /api/voices, posts to /tts, plays the result.
(function () {
  const $ = (id) => document.getElementById(id);
  const text = $("text"), count = $("count"), max = $("max"), counter = count.parentElement;
  const voice = $("voice"), emotion = $("emotion"), format = $("format");
  const speed = $("speed"), speedValue = $("speed-value");
  const button = $("synthesise"), status = $("status"), player = $("player"), download = $("download");
  let maxChars = 500;
  let objectUrl = null;

  function fill(select, values, chosen) {
    select.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      option.selected = value === chosen;
      return option;
    }));
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

  async function loadCatalog() {
    const response = await fetch("/api/voices");
    const catalog = await response.json();
    maxChars = catalog.max_chars;
    max.textContent = String(maxChars);
    fill(voice, catalog.voices, catalog.default_voice);
    fill(emotion, catalog.emotions, catalog.default_emotion);
    fill(format, catalog.formats, "wav");
    speed.min = String(catalog.speed.min);
    speed.max = String(catalog.speed.max);
    speed.disabled = catalog.speed.min === catalog.speed.max;
    $("engine").textContent = `engine ${catalog.engine} on ${catalog.device}`;
    updateCount();
  }

  async function synthesise(event) {
    event.preventDefault();
    button.disabled = true;
    say("synthesising…");
    const started = performance.now();
    try {
      const response = await fetch("/tts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          text: text.value, voice: voice.value, emotion: emotion.value,
          speed: Number(speed.value), format: format.value,
        }),
      });
      if (!response.ok) {
        let message = `HTTP ${response.status}`;
        try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
        say(message, true);
        return;
      }
      const blob = await response.blob();
      const latency = performance.now() - started;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      player.src = objectUrl;
      download.href = objectUrl;
      download.download = `speech.${format.value}`;
      download.hidden = false;
      const audioSeconds = response.headers.get("X-Audio-Duration");
      const synthSeconds = response.headers.get("X-Synthesis-Time");
      const cache = response.headers.get("X-Cache");
      say(`latency ${latency.toFixed(0)} ms (synthesis ${(Number(synthSeconds) * 1000).toFixed(0)} ms` +
          `${cache === "hit" ? ", from cache" : ""}) · audio ${Number(audioSeconds).toFixed(2)} s`);
      player.play().catch(() => { /* autoplay may be blocked; the controls remain */ });
    } catch (error) {
      say(`request failed: ${error}`, true);
    } finally {
      button.disabled = false;
    }
  }

  text.addEventListener("input", updateCount);
  speed.addEventListener("input", () => { speedValue.textContent = Number(speed.value).toFixed(1); });
  $("form").addEventListener("submit", synthesise);
  loadCatalog().catch((error) => say(`cannot load voices: ${error}`, true));
})();
