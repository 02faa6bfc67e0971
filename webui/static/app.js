// healthpost: the little script the pages use. Everything works without
// it except the idle lock timer, the live readings and one-tap clock set.
"use strict";
(function () {
  var body = document.body;
  var csrf = body.getAttribute("data-csrf") || "";

  // Forms that report the tablet's clock: fill it as they are sent.
  document.querySelectorAll("form[data-tablet-time]").forEach(function (f) {
    f.addEventListener("submit", function () {
      var i = f.querySelector("input[name=tablet_time]");
      if (i) i.value = String(Date.now());
    });
  });

  // Show the tablet's time next to the node's on the admin page.
  var tn = document.getElementById("tablet-now");
  if (tn) {
    var d = new Date();
    tn.textContent = d.toLocaleString("en-IN", { dateStyle: "medium", timeStyle: "short", timeZone: "Asia/Kolkata" });
  }

  // Buttons that print, and buttons that ask first.
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // Idle lock: a shared tablet left alone locks itself. Activity (typing a
  // long form makes no requests) is reported to the node at most once a minute.
  var idle = parseInt(body.getAttribute("data-idle") || "0", 10) * 1000;
  if (idle > 0) {
    var last = Date.now(), pinged = Date.now(), active = false;
    var mark = function () { last = Date.now(); active = true; };
    ["pointerdown", "keydown", "input", "scroll"].forEach(function (ev) {
      window.addEventListener(ev, mark, { passive: true });
    });
    // A visit form typed into is saved as a draft before the tablet locks,
    // so stepping away never loses a half-written visit.
    var visit = document.getElementById("encounter-form"), dirty = false;
    if (visit) visit.addEventListener("input", function () { dirty = true; });
    setInterval(function () {
      var now = Date.now();
      if (now - last >= idle) {
        if (visit && dirty) {
          [["action", "save"], ["lock", "1"]].forEach(function (kv) {
            var i = document.createElement("input");
            i.type = "hidden"; i.name = kv[0]; i.value = kv[1];
            visit.appendChild(i);
          });
          dirty = false;
          visit.submit();
          return;
        }
        location.href = "/lock?next=" + encodeURIComponent(location.pathname + location.search);
        return;
      }
      if (active && now - pinged > 60000 && window.fetch) {
        active = false;
        pinged = now;
        fetch("/session/ping", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
      }
    }, 10000);
  }

  // An ABHA card's QR code by the tablet's camera, where the browser allows
  // it: the camera needs a secure context (https, or the node's own screen)
  // and BarcodeDetector (Chrome on Android). Elsewhere the page says why and
  // the scanner field stays the way in.
  var cam = document.getElementById("qr-camera");
  if (cam) {
    var qrInput = document.getElementById("qr");
    var camFailed = document.getElementById("qr-camera-failed");
    if (window.isSecureContext && "BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      cam.hidden = false;
      cam.addEventListener("click", function () {
        var video = document.getElementById("qr-video");
        var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        camFailed.hidden = true;
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
          var until = Date.now() + 60000;
          var stop = function () {
            stream.getTracks().forEach(function (tr) { tr.stop(); });
            video.hidden = true;
          };
          var look = function () {
            if (Date.now() > until) { stop(); camFailed.hidden = false; return; }
            detector.detect(video).then(function (codes) {
              if (codes.length > 0 && codes[0].rawValue) {
                stop();
                qrInput.value = codes[0].rawValue;
                qrInput.form.submit();
                return;
              }
              requestAnimationFrame(look);
            }, function () { requestAnimationFrame(look); });
          };
          video.srcObject = stream;
          video.hidden = false;
          video.play();
          look();
        }, function () { camFailed.hidden = false; });
      });
    } else {
      document.getElementById("qr-camera-off").hidden = false;
    }
  }

  // Live readings of a bound device, by server-sent events.
  var live = document.getElementById("live");
  if (live && live.getAttribute("data-src") && window.EventSource) {
    var seen = {};
    live.querySelectorAll("input[name=attach]").forEach(function (i) { seen[i.value] = true; });
    var es = new EventSource(live.getAttribute("data-src"));
    es.addEventListener("reading", function (e) {
      var r = JSON.parse(e.data);
      if (r.obs && seen[r.obs]) return;
      var li = document.createElement("li");
      var text = r.name + " " + r.value + " " + r.unit;
      if (r.rejected) {
        li.className = "rejected";
        li.textContent = text + " · " + r.device + " — " + r.rejected;
      } else {
        seen[r.obs] = true;
        var label = document.createElement("label");
        var box = document.createElement("input");
        box.type = "checkbox"; box.name = "attach"; box.value = r.obs; box.checked = true;
        var strong = document.createElement("strong");
        strong.textContent = text;
        label.appendChild(box);
        label.appendChild(document.createTextNode(" "));
        label.appendChild(strong);
        label.appendChild(document.createTextNode(" · " + r.device + " · " + r.at));
        li.appendChild(label);
      }
      li.setAttribute("data-live", "1");
      live.appendChild(li);
    });
    es.addEventListener("end", function () {
      es.close();
      var li = document.createElement("li");
      li.className = "hint";
      li.textContent = live.getAttribute("data-ended");
      live.appendChild(li);
    });
  }

  // Live progress of delivery on the sync page, by server-sent events.
  // When a run that was under way ends, the page reloads to show the new
  // queue, refused documents and history. Without script, reload by hand.
  var sync = document.getElementById("sync-live");
  if (sync && sync.getAttribute("data-src") && window.EventSource) {
    var running = sync.getAttribute("data-running") === "1";
    var show = function (id, text) {
      var el = document.getElementById(id);
      if (el) el.textContent = text;
    };
    var ss = new EventSource(sync.getAttribute("data-src"));
    ss.addEventListener("progress", function (e) {
      var p = JSON.parse(e.data);
      show("sync-state", p.state_text);
      show("sync-next", p.next_try);
      show("sync-run", p.run_text);
      show("sync-pending", p.pending_text);
      show("sync-last-error", p.last_error);
      var bar = document.getElementById("sync-progress");
      if (bar) { bar.max = Math.max(p.total, 1); bar.value = p.done; }
      if (p.running) running = true;
      else if (running) { ss.close(); location.href = "/admin/sync"; }
    });
    ss.addEventListener("end", function () { ss.close(); });
  }
})();
