// Short notices after an action ("probe: success"), gone after a few seconds.

import { createContext } from 'preact';
import type { ComponentChildren } from 'preact';
import { useCallback, useContext, useState } from 'preact/hooks';

type ToastTone = 'good' | 'bad' | 'info';
interface Toast {
  id: number;
  text: string;
  tone: ToastTone;
}

const SHOW_MS = 5000;
const ToastContext = createContext<(text: string, tone?: ToastTone) => void>(() => {});

export function useToast() {
  return useContext(ToastContext);
}

let nextId = 1;

export function ToastProvider({ children }: { children: ComponentChildren }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string, tone: ToastTone = 'info') => {
    const id = nextId++;
    setToasts((list) => [...list.slice(-3), { id, text, tone }]);
    window.setTimeout(() => setToasts((list) => list.filter((t) => t.id !== id)), SHOW_MS);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div class="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} class={`toast tone-${t.tone}`} data-testid="toast">
            {t.text}
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}
