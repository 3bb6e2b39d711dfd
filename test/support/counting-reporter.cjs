// Mocha's spec reporter, plus one JSON line of mocha's own counts appended to $LP_MOCHA_STATS at
// the end of a run, so that scripts/test can sum the contract run and the node run exactly.
"use strict";
const fs = require("node:fs");
const Mocha = require("mocha");

class CountingSpecReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const file = process.env.LP_MOCHA_STATS;
      if (!file) return;
      const { passes, failures, pending, tests } = runner.stats;
      fs.appendFileSync(file, JSON.stringify({ passes, failures, pending, tests }) + "\n");
    });
  }
}

module.exports = CountingSpecReporter;
