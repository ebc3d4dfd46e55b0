/** LEB128 numbers as the delta streams write them (for forging hostile streams in tests). */
export function varints(...v: number[]): Buffer {
  const o: number[] = [];
  for (let x of v) {
    while (x >= 128) {
      o.push((x % 128) | 128);
      x = Math.floor(x / 128);
    }
    o.push(x);
  }
  return Buffer.from(o);
}
