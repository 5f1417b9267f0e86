import { useSignal } from "@preact/signals";
import { useRef } from "preact/hooks";
import { client, errorText } from "../app";

export function Login() {
  const username = useRef<HTMLInputElement>(null);
  const password = useRef<HTMLInputElement>(null);
  const error = useSignal("");
  const submit = async (mode: "signup" | "login") => {
    const u = username.current!;
    const p = password.current!;
    error.value = "";
    if (!u.reportValidity() || !p.reportValidity()) return;
    try {
      await (mode === "signup" ? client.auth.signup(u.value, p.value) : client.auth.login(u.value, p.value));
      location.hash = "#/";
    } catch (err) {
      error.value = errorText(err);
    }
  };
  return (
    <main class="login">
      <h1>edgechat</h1>
      <form onSubmit={(e) => (e.preventDefault(), void submit("login"))}>
        <input ref={username} id="username" name="username" autocomplete="username" placeholder="username" required minLength={3} />
        <input ref={password} id="password" name="password" type="password" autocomplete="current-password" placeholder="password" required minLength={8} />
        <div class="row">
          <button type="submit" data-action="login">Log in</button>
          <button type="button" class="secondary" data-action="signup" onClick={() => void submit("signup")}>
            Sign up
          </button>
        </div>
        <p class="error" role="alert">{error}</p>
      </form>
    </main>
  );
}
