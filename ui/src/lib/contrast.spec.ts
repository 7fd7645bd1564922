// The header's colours against WCAG 2.1 AA (4.5:1 for text): the header is read all day, on
// cheap screens, by people who are not young.
import { describe, expect, it } from 'vitest';
import css from '../app.css?raw';

function luminance(hex: string): number {
  const c = hex.replace('#', '');
  const [r, g, b] = [0, 2, 4].map((i) => {
    const v = parseInt(c.slice(i, i + 2), 16) / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x! + 0.05) / (y! + 0.05);
}

/** `fg` at `alpha` over `bg`, as the screen shows it. */
function over(fg: string, alpha: number, bg: string): string {
  const mix = [0, 2, 4].map((i) => {
    const f = parseInt(fg.slice(1 + i, 3 + i), 16);
    const g = parseInt(bg.slice(1 + i, 3 + i), 16);
    return Math.round(alpha * f + (1 - alpha) * g)
      .toString(16)
      .padStart(2, '0');
  });
  return `#${mix.join('')}`;
}

const variable = (name: string) => new RegExp(`--${name}:\\s*(#[0-9a-f]{6})`).exec(css)![1]!;

describe('the header reads at WCAG AA', () => {
  const blue = variable('blue');
  const cases: [string, string][] = [
    ['white', '#ffffff'],
    ['muted lines (80 % white)', over('#ffffff', 0.8, blue)],
    ['the sync bar', '#dbe4f3'],
    ['a failed sync', '#ffd2cc'],
    ['the gold of the brand and of warnings', variable('gold')],
  ];
  for (const [what, fg] of cases) {
    it(what, () => expect(contrast(fg, blue)).toBeGreaterThanOrEqual(4.5));
  }
  it('the demo badge: dark blue on gold', () => {
    expect(contrast(variable('blue-dark'), variable('gold'))).toBeGreaterThanOrEqual(4.5);
  });
});
