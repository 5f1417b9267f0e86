// Hash routes: #/login, #/ (the inbox), #/c/<conversation id>.
import { useEffect } from "preact/hooks";
import { client, route, user } from "../app";
import { ConversationView } from "./ConversationView";
import { Inbox } from "./Inbox";
import { Login } from "./Login";

const CONVERSATION = /^#\/c\/([A-Za-z0-9_-]{1,64})$/;

export function App() {
  const me = user.value;
  const hash = route.value;
  useEffect(() => {
    if (!me) {
      if (hash !== "#/login") location.hash = "#/login";
      return;
    }
    client.connect(); // the user socket: inbox, presence, receipts (idempotent)
    if (hash === "#/login") location.hash = "#/";
  }, [me, hash]);

  if (!me) return hash === "#/login" ? <Login /> : null;
  const m = CONVERSATION.exec(hash);
  if (m) return <ConversationView key={m[1]} id={m[1]!} me={me} />;
  if (hash === "#/login") return null;
  return <Inbox me={me} />;
}
