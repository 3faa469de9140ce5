// The two text-encoding classes of the WHATWG Encoding standard, which every
// runtime the library runs in provides (browsers, workers, Node): declared here
// because src/lib is typechecked without the DOM library (tsconfig.lib.json).
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer, options?: { stream?: boolean }): string;
}
