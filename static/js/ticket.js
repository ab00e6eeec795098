// Ticket page: jump the call recording to an utterance, and show which one is playing.
// Plain DOM, no framework; event delegation so transcripts swapped in later work too.
(function () {
  "use strict";

  function player() {
    return document.getElementById("tk-audio");
  }

  function seek(audio, seconds) {
    var jump = function () {
      audio.currentTime = seconds;
      var playing = audio.play();
      // Autoplay rules may refuse; the player is still at the right place.
      if (playing && typeof playing.catch === "function") {
        playing.catch(function () {});
      }
    };
    // Before the metadata is in, browsers ignore or reset currentTime.
    if (audio.readyState >= 1) {
      jump();
    } else {
      audio.addEventListener("loadedmetadata", jump, { once: true });
      audio.load();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("button[data-seek]") : null;
    if (!button) {
      return;
    }
    var audio = player();
    var seconds = parseFloat(button.getAttribute("data-seek"));
    if (!audio || !isFinite(seconds)) {
      return;
    }
    event.preventDefault();
    seek(audio, seconds);
  });

  // Mark the utterance being heard, for sighted users following along.
  document.addEventListener(
    "timeupdate",
    function (event) {
      var audio = event.target;
      if (!(audio instanceof HTMLMediaElement) || audio.id !== "tk-audio") {
        return;
      }
      var lines = document.querySelectorAll(".tk-transcript [data-start]");
      var current = null;
      for (var i = 0; i < lines.length; i++) {
        if (parseFloat(lines[i].getAttribute("data-start")) <= audio.currentTime + 0.05) {
          current = lines[i];
        }
      }
      for (var j = 0; j < lines.length; j++) {
        lines[j].classList.toggle("tk-line-playing", lines[j] === current);
      }
    },
    true
  );
})();
