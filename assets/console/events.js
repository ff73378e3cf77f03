// One event WebSocket that comes back by itself: reconnects with exponential backoff (1 s to
// 30 s), and reports each (re)connection so the page re-reads what it may have missed.

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

/**
 * Listens on `url()` (re-evaluated on each attempt) until `stop()` is called.
 * `onEvent(event)` gets every message (the first one is `hello`); `onLink(up)` the state.
 */
export function listen(url, onEvent, onLink) {
  let ws = null;
  let delay = MIN_DELAY;
  let timer = null;
  let stopped = false;

  function open() {
    ws = new WebSocket(url());
    ws.onopen = () => {
      delay = MIN_DELAY;
      onLink(true);
    };
    ws.onmessage = (m) => {
      try {
        onEvent(JSON.parse(m.data));
      } catch (e) {
        console.error("event not understood", e);
      }
    };
    ws.onclose = () => {
      onLink(false);
      if (stopped) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, MAX_DELAY);
    };
  }

  open();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}
