// CodeMirror 6 for the function editor (JavaScript highlighting, compile errors as
// diagnostics at the line the API reports) and the stage diff. Loaded on demand.
import { EditorView, basicSetup } from 'codemirror';
import { javascript } from '@codemirror/lang-javascript';
import { setDiagnostics, lintGutter } from '@codemirror/lint';
import { EditorState, type Extension } from '@codemirror/state';
import { MergeView } from '@codemirror/merge';

/** The CSP nonce the server put in the page, for the style elements CodeMirror may add. */
function nonceExtension(): Extension[] {
  const nonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content;
  return nonce ? [EditorView.cspNonce.of(nonce)] : [];
}

const theme = EditorView.theme({
  '&': { fontSize: '13px', border: '1px solid #b9c0c9', borderRadius: '6px' },
  '&.cm-focused': { outline: '2px solid #1d5fd1', outlineOffset: '1px' },
  '.cm-scroller': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', minHeight: '320px', maxHeight: '70vh' },
});

export interface CodeEditor {
  view: EditorView;
  getCode(): string;
  setCode(code: string): void;
  /** Marks a compile error at `line` (1-based; column 1-based when known), or clears with undefined. */
  showError(error: { line: number; column?: number; message: string } | undefined): void;
  destroy(): void;
}

export function createEditor(parent: HTMLElement, code: string, onChange: (code: string) => void, label: string): CodeEditor {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: code,
      extensions: [
        basicSetup, javascript(), lintGutter(), theme, ...nonceExtension(),
        EditorView.contentAttributes.of({ 'aria-label': label }),
        EditorView.updateListener.of((u) => { if (u.docChanged) onChange(u.state.doc.toString()); }),
      ],
    }),
  });
  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode: (c) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: c } }),
    showError: (err) => {
      if (!err) { view.dispatch(setDiagnostics(view.state, [])); return; }
      const doc = view.state.doc;
      const line = doc.line(Math.min(Math.max(err.line, 1), doc.lines));
      const from = Math.min(line.from + Math.max((err.column ?? 1) - 1, 0), line.to);
      view.dispatch(setDiagnostics(view.state, [{ from, to: Math.max(line.to, from), severity: 'error', message: err.message }]));
      view.dispatch({ selection: { anchor: from }, effects: EditorView.scrollIntoView(from, { y: 'center' }) });
    },
    destroy: () => view.destroy(),
  };
}

/** A read-only side-by-side diff: `a` (LIVE) left, `b` (DEVELOPMENT) right. */
export function createDiff(parent: HTMLElement, a: string, b: string): { destroy(): void } {
  const ro = [basicSetup, javascript(), EditorState.readOnly.of(true), EditorView.editable.of(false), theme, ...nonceExtension()];
  const mv = new MergeView({ parent, a: { doc: a, extensions: ro }, b: { doc: b, extensions: ro }, gutter: true, highlightChanges: true });
  return { destroy: () => mv.destroy() };
}
