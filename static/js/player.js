// Recording player for the call and ticket pages: a transcript's time stamps jump the
// recording there, and the line being heard is marked. Plain DOM and event delegation,
// so transcripts swapped in later work too.
//
// Markup (each page says what differs with data attributes on its <audio>):
//   <audio id="x-audio" data-player
//          data-player-lines="CSS selector of the transcript lines (default: [data-start])"
//          data-player-current="class for the line being heard (default: player-current)">
//   <li data-start="12.500" data-end="15.000">  (data-end optional: without it a line
//                                                lasts until the next one starts)
//   <button type="button" data-seek="12.500" aria-controls="x-audio">0:12</button>
// A seek button drives the <audio> its aria-controls names, else the page's only player.
// The line being heard also gets aria-current="true".
(function () {
  "use strict";

  var DEFAULT_LINES = "[data-start]";
  var DEFAULT_CURRENT = "player-current";
  // After a jump to a line's start the player may sit a hair before it; that line is still the one heard.
  var EARLY = 0.05;

  function isMedia(element) {
    return element instanceof HTMLMediaElement;
  }

  function controlledBy(audio) {
    return audio.id ? document.querySelector('[data-seek][aria-controls="' + CSS.escape(audio.id) + '"]') : null;
  }

  function isPlayer(audio) {
    return isMedia(audio) && (audio.hasAttribute("data-player") || controlledBy(audio) !== null);
  }

  function playerFor(button) {
    var id = button.getAttribute("aria-controls");
    if (id) {
      var named = document.getElementById(id);
      return isMedia(named) ? named : null;
    }
    var players = document.querySelectorAll("audio[data-player]");
    if (players.length === 1) {
      return players[0];
    }
    var audios = document.getElementsByTagName("audio");
    return players.length === 0 && audios.length === 1 ? audios[0] : null;
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

  function mark(audio) {
    var lines = document.querySelectorAll(audio.getAttribute("data-player-lines") || DEFAULT_LINES);
    var css = audio.getAttribute("data-player-current") || DEFAULT_CURRENT;
    var now = audio.currentTime;
    var current = null;
    for (var i = 0; i < lines.length; i++) {
      if (parseFloat(lines[i].getAttribute("data-start")) <= now + EARLY) {
        current = lines[i];
      }
    }
    if (current && current.hasAttribute("data-end") && now >= parseFloat(current.getAttribute("data-end"))) {
      current = null; // a pause between two lines: nobody is speaking
    }
    for (var j = 0; j < lines.length; j++) {
      var on = lines[j] === current;
      lines[j].classList.toggle(css, on);
      if (on) {
        lines[j].setAttribute("aria-current", "true");
      } else {
        lines[j].removeAttribute("aria-current");
      }
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-seek]") : null;
    if (!button) {
      return;
    }
    var audio = playerFor(button);
    var seconds = parseFloat(button.getAttribute("data-seek"));
    if (!audio || !isFinite(seconds)) {
      return;
    }
    event.preventDefault();
    seek(audio, seconds);
  });

  // Media events do not bubble: listen in the capture phase. "seeked" marks a jump made while paused.
  ["timeupdate", "seeked"].forEach(function (type) {
    document.addEventListener(
      type,
      function (event) {
        if (isPlayer(event.target)) {
          mark(event.target);
        }
      },
      true
    );
  });
})();
