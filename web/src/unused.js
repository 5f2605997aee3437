// Stands in for modules that @grafana/ui and @grafana/flamegraph import but
// never call in Kiln's UI (see build.mjs): the Monaco editor, OpenLayers and
// the Grafana Assistant. Anything rendered from here renders nothing.
export default function Unused() {
  return null;
}
export const OpenAssistantButton = Unused;
export const loader = { config() {}, init: () => Promise.resolve(null) };
export function useMonaco() {
  return null;
}
export const editor = {};
export const languages = {};
export const Uri = {};
export const KeyCode = {};
export const KeyMod = {};
export const MarkerSeverity = {};
export function Range() {}
export const WKT = Unused;
export function Geometry() {}
