// htl ships no type declarations; the lab only uses its `html` tagged template.
declare module "htl" {
  export function html(strings: TemplateStringsArray, ...values: unknown[]): HTMLElement;
}
