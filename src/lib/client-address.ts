// The key that per-address limits count a client under. IPv4: the address itself. IPv6: its /64, because
// one subscriber or host is usually handed a whole /64, and counting single IPv6 addresses would give a
// client 2^64 budgets. Every spelling of an address gives the same key (compressed, zero-padded, upper case,
// with a zone id), and an IPv4-mapped IPv6 address (::ffff:198.51.100.7) counts as its IPv4 address.
import ipaddr from "ipaddr.js";

/** Longest unparseable value kept as a key (the header comes from Cloudflare; only local runs send junk). */
const MAX_RAW_KEY = 64;

export function addressKey(header: string | undefined | null): string {
  const text = (header ?? "").trim();
  if (!text) return "unknown";
  if (!ipaddr.isValid(text)) return `raw:${text.slice(0, MAX_RAW_KEY).toLowerCase()}`;
  // process() turns an IPv4-mapped IPv6 address into the IPv4 address.
  const addr = ipaddr.process(text);
  if (addr.kind() === "ipv4") return addr.toString();
  const prefix = (addr as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...prefix, 0, 0, 0, 0]).toRFC5952String()}/64`;
}
