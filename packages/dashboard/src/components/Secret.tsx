/** A secret shown once (a new token or key) with a Copy button. */
import { useState } from 'react';

export function Secret({ value, testId, label }: { value: string; testId: string; label: string }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  return (
    <div className="secret" role="group" aria-label={label}>
      <code data-testid={testId}>{value}</code>
      <button
        type="button"
        className="secondary"
        onClick={() => {
          navigator.clipboard
            .writeText(value)
            .then(() => setCopied('yes'))
            .catch(() => setCopied('no'));
        }}
      >
        Copy
      </button>
      <span role="status" className="muted">
        {copied === 'yes'
          ? 'Copied.'
          : copied === 'no'
            ? 'Copy failed: select the text instead.'
            : ''}
      </span>
      <p className="muted">Shown once: keep it now, it cannot be displayed again.</p>
    </div>
  );
}
