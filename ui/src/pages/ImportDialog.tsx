// Import credentials from a CSV file: a dry run shows what each line would do, then the valid
// lines are added in one transaction.

import { useState } from 'preact/hooks';

import { type ImportReport, type ImportStatus, api } from '../api';
import { Badge, type Tone } from '../components/Badge';
import { Dialog } from '../components/Dialog';
import { kindLabel } from '../credentials';
import { ErrorNote } from '../components/ErrorNote';

const STATUS_TONE: Record<ImportStatus, Tone> = { valid: 'good', duplicate: 'warn', malformed: 'bad' };

type Step =
  | { step: 'pick' }
  | { step: 'checked'; csv: string; fileName: string; report: ImportReport }
  | { step: 'applied'; report: ImportReport };

export function ImportDialog({ onClose, onApplied }: { onClose: () => void; onApplied: () => void }) {
  const [state, setState] = useState<Step>({ step: 'pick' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const pick = async (file: File | undefined) => {
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const csv = await file.text();
      const report = await api.importCredentials(csv, true);
      setState({ step: 'checked', csv, fileName: file.name, report });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const apply = async (csv: string) => {
    setBusy(true);
    setError(null);
    try {
      const report = await api.importCredentials(csv, false);
      setState({ step: 'applied', report });
      onApplied();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title="Import credentials" onClose={onClose} testid="import-dialog" wide>
      {state.step === 'pick' && (
        <>
          <p>
            A CSV file with a header row. Columns: <code>name,secret,kind,priority,weight,max_concurrent,group,enabled</code>{' '}
            — only <code>name</code> and <code>secret</code> are required. Nothing is added before you confirm.
          </p>
          <input
            type="file"
            accept=".csv,text/csv"
            disabled={busy}
            onChange={(e) => void pick(e.currentTarget.files?.[0])}
            data-testid="import-file"
          />
          {busy && <p class="muted">Checking…</p>}
        </>
      )}
      {state.step === 'checked' && (
        <>
          <p>
            <strong>{state.fileName}</strong>: <Counts report={state.report} />
          </p>
          <ReportTable report={state.report} />
        </>
      )}
      {state.step === 'applied' && (
        <>
          <p data-testid="import-result">
            {state.report.applied
              ? `Added ${state.report.counts.valid} credential${state.report.counts.valid === 1 ? '' : 's'}.`
              : 'Nothing was added.'}{' '}
            <Counts report={state.report} />
          </p>
          <ReportTable report={state.report} />
        </>
      )}
      <ErrorNote error={error} />
      <div class="dialog-actions">
        {state.step === 'checked' && (
          <button type="button" onClick={() => setState({ step: 'pick' })} disabled={busy}>
            Choose another file
          </button>
        )}
        <button type="button" onClick={onClose}>
          {state.step === 'applied' ? 'Close' : 'Cancel'}
        </button>
        {state.step === 'checked' && (
          <button
            type="button"
            class="primary"
            disabled={busy || state.report.counts.valid === 0}
            onClick={() => void apply(state.csv)}
            data-testid="import-apply"
          >
            {busy ? 'Adding…' : `Apply ${state.report.counts.valid} valid row${state.report.counts.valid === 1 ? '' : 's'}`}
          </button>
        )}
      </div>
    </Dialog>
  );
}

function Counts({ report }: { report: ImportReport }) {
  return (
    <span class="counts" data-testid="import-counts">
      <Badge tone="good" label={`${report.counts.valid} valid`} />{' '}
      <Badge tone="warn" label={`${report.counts.duplicate} duplicate`} />{' '}
      <Badge tone="bad" label={`${report.counts.malformed} malformed`} />
    </span>
  );
}

function ReportTable({ report }: { report: ImportReport }) {
  return (
    <div class="table-wrap scroll-y">
      <table class="table compact" data-testid="import-report">
        <thead>
          <tr>
            <th class="num">Line</th>
            <th>Name</th>
            <th>Status</th>
            <th>Reason</th>
            <th>Kind</th>
            <th>Secret</th>
          </tr>
        </thead>
        <tbody>
          {report.rows.map((row) => (
            <tr key={row.line} data-testid="import-row" data-status={row.status} data-line={row.line}>
              <td class="num">{row.line}</td>
              <td>{row.name ?? <span class="muted">—</span>}</td>
              <td>
                <Badge tone={STATUS_TONE[row.status] ?? 'muted'} label={row.status} />
              </td>
              <td>{row.reason ?? <span class="muted">—</span>}</td>
              <td>{kindLabel(row.kind) ?? <span class="muted">—</span>}</td>
              <td>{row.masked ? <code class="secret">{row.masked}</code> : <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
