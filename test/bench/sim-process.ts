/** The simulated engine in a process of its own, as a remote engine would be: prints its URL on stdout. */
import { SimulatedEngine } from '../../src/simulator/engine';

const [hosts = '500', vms = '10000', seed = '1'] = process.argv.slice(2);
const sim = new SimulatedEngine({ hosts: Number(hosts), vms: Number(vms), seed: Number(seed), cacheAnswers: true });
sim.start().then((url) => process.stdout.write(`${JSON.stringify({ url, username: sim.username, password: sim.password })}\n`));
process.on('SIGTERM', () => sim.stop().then(() => process.exit(0)));
// Benchmarks count the engine requests a scorer made: SIGUSR2 prints the count so far.
process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ requests: sim.requests.length })}\n`));
