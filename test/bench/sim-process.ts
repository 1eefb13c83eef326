/**
 * The simulated engine in a process of its own, as a remote engine would be: prints its URL on stdout.
 * argv: hosts vms seed [changes per second]: with the last, VMs start, stop, migrate and change OS
 * all the time (each with its engine event), as on a busy engine (the soak benchmark).
 */
import { SimulatedEngine } from '../../src/simulator/engine';

const [hosts = '500', vms = '10000', seed = '1', churn = '0'] = process.argv.slice(2);
const sim = new SimulatedEngine({ hosts: Number(hosts), vms: Number(vms), seed: Number(seed), cacheAnswers: true });
// A failure to start is left unhandled on purpose: the process exits with it (and its stack on stderr).
void sim.start().then((url) => process.stdout.write(`${JSON.stringify({ url, username: sim.username, password: sim.password })}\n`));
process.on('SIGTERM', () => void sim.stop().then(() => process.exit(0)));
// Benchmarks count the engine requests a scorer made: SIGUSR2 prints the count so far.
process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ requests: sim.requestCount })}\n`));

if (Number(churn) > 0) {
  const inv = sim.inventory;
  const hostIds = [...inv.hosts.keys()];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  const types = ['rhel_8x64', 'rhel_9x64', 'windows_2022', 'other_linux'];
  setInterval(() => {
    const vmIds = [...inv.vms.keys()];
    for (let i = 0; i < Number(churn) / 10; i++) {
      const vm = inv.vm(pick(vmIds));
      const r = Math.random();
      if (vm.hostId === undefined) inv.startVm(vm.id, pick(hostIds));
      else if (r < 0.5) inv.migrateVm(vm.id, pick(hostIds));
      else if (r < 0.8) inv.stopVm(vm.id);
      else inv.updateVmOs(vm.id, pick(types));
    }
  }, 100).unref();
}
