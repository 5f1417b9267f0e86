// How long a conversation keeps its messages (docs/protocol.md 16): the period in force, and for those who may
// change it (a group's owner and admins, either member of a direct conversation) a choice of periods.

const PERIODS: { days: number; label: string }[] = [
  { days: 0, label: "forever" },
  { days: 1, label: "1 day" },
  { days: 7, label: "7 days" },
  { days: 30, label: "30 days" },
  { days: 90, label: "90 days" },
  { days: 365, label: "1 year" },
];

function label(days: number): string {
  return PERIODS.find((p) => p.days === days)?.label ?? `${days} days`;
}

export function Retention({ days, own, editable, onChange }: { days: number; own: boolean; editable: boolean; onChange: (days: number | null) => void }) {
  const title = `Messages are kept ${days === 0 ? "forever" : `for ${label(days)}`}${own ? "" : " (server default)"}`;
  if (!editable) {
    return (
      <span class="retention" data-testid="retention" title={title}>
        {days === 0 ? "" : `⏱ ${label(days)}`}
      </span>
    );
  }
  return (
    <label class="retention" title={title}>
      <span class="sr-only">Keep messages</span>
      <select
        data-action="retention"
        value={own ? String(days) : "default"}
        onChange={(e) => {
          const v = (e.currentTarget as HTMLSelectElement).value;
          onChange(v === "default" ? null : Number(v));
        }}
      >
        <option value="default">{own ? "keep: server default" : `keep: server default (${label(days)})`}</option>
        {PERIODS.map((p) => (
          <option key={p.days} value={String(p.days)}>
            {`keep: ${p.label}`}
          </option>
        ))}
      </select>
    </label>
  );
}
