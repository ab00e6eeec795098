// Calls pages: the transcript drives the recording player; paging the history keeps keyboard focus.
(function () {
  "use strict";

  function player() {
    return document.getElementById("call-audio");
  }

  function seek(audio, seconds) {
    const start = function () {
      audio.currentTime = seconds;
      const playing = audio.play();
      if (playing && playing.catch) playing.catch(function () { /* autoplay refused: the position is still set */ });
    };
    // Seeking before the metadata is known is ignored by some browsers.
    if (audio.readyState >= 1) start();
    else {
      audio.addEventListener("loadedmetadata", start, { once: true });
      audio.load();
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest(".calls-seek[data-seek]");
    const audio = player();
    if (!button || !audio) return;
    const seconds = parseFloat(button.dataset.seek);
    if (!Number.isNaN(seconds)) seek(audio, seconds);
  });

  // Mark the utterance being played, so the transcript follows the recording.
  document.addEventListener("timeupdate", function (event) {
    if (event.target !== player()) return;
    const now = event.target.currentTime;
    document.querySelectorAll(".calls-utterance[data-start]").forEach(function (item) {
      const on = now >= parseFloat(item.dataset.start) && now < parseFloat(item.dataset.end);
      item.classList.toggle("calls-utterance-current", on);
      if (on) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    });
  }, true);

  // After paging or sorting the history, the link that had focus is gone: move focus to the results.
  document.addEventListener("htmx:afterSettle", function (event) {
    const source = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!source || !source.hasAttribute || !source.hasAttribute("data-calls-nav")) return;
    const heading = document.getElementById("calls-results-heading");
    if (heading) heading.focus();
  });
})();
