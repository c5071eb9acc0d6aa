// The pages behind the links in account e-mails: /console/verify and /console/reset.
// The token is read from the address once, then removed from it (history and screen sharing).
"use strict";

(function () {
  const result = document.getElementById("result");
  const token = new URLSearchParams(window.location.search).get("token") || "";
  window.history.replaceState(null, "", window.location.pathname);

  function say(text, state) {
    result.textContent = text;
    result.classList.toggle("error", state === "error");
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let detail = "";
    if (!response.ok) {
      try {
        detail = (await response.json()).detail || "";
      } catch (_) {
        detail = "";
      }
    }
    return { ok: response.ok, status: response.status, detail };
  }

  async function verify() {
    if (!token) {
      say("This link has no token. Open the link from the e-mail again.", "error");
      return;
    }
    const answer = await post("/api/v1/auth/verify-email", { token });
    if (answer.ok) {
      say("Your e-mail address is verified.", "ok");
    } else {
      say(answer.detail || `The address could not be verified (${answer.status}).`, "error");
    }
  }

  function reset() {
    const form = document.getElementById("reset-form");
    if (!token) {
      form.hidden = true;
      say("This link has no token. Open the link from the e-mail again.", "error");
      return;
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const newPassword = new FormData(form).get("new_password");
      const answer = await post("/api/v1/auth/password-reset/confirm", { token, new_password: newPassword });
      if (answer.ok) {
        form.hidden = true;
        say("Your password is changed. Every session was signed out; log in with the new password.", "ok");
      } else {
        say(answer.detail || `The password could not be changed (${answer.status}).`, "error");
      }
    });
  }

  if (document.body.dataset.page === "verify") {
    verify().catch(() => say("The server could not be reached; try the link again.", "error"));
  } else {
    reset();
  }
})();
