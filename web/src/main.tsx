// edgechat web: sign in, inbox, direct messages and groups. Preact components with signals on the SDK;
// hash routes: #/login   #/   #/c/<conversation id>
import { render } from "preact";
import { App } from "./components/App";

render(<App />, document.getElementById("app")!);
