import { launch } from "../tools/chromium.ts";
import { serveDist } from "../tools/static-server.ts";
import { firstFrameOf, recordFirstFrames } from "../bench/first-frame.ts";
const sites = { old: await serveDist("/tmp/dist-old/"), new: await serveDist("/tmp/dist-new/") };
const out: Record<string, number[]> = { old: [], new: [] };
for (let r = 0; r < 6; r++)
  for (const name of (r % 2 ? ["new", "old"] : ["old", "new"]) as const) {
    const context = await launch();
    await recordFirstFrames(context, ["[data-testid=tokens]"]);
    const page = await context.newPage();
    const workers: string[] = [];
    page.on("worker", (w) => workers.push(w.url().split("/").pop()!));
    await page.goto(sites[name].url + "playground?ep=wasm", { waitUntil: "commit" });
    out[name].push(Math.round(await firstFrameOf(page, "[data-testid=tokens]")));
    if (r === 0) console.log(name, workers);
    await context.close();
  }
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log("old", out.old.join(" "), "median", med(out.old), "| new", out.new.join(" "), "median", med(out.new));
for (const s of Object.values(sites)) await s.close();
