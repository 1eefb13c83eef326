/** The operating systems of the simulated VMs: osinfo names and what guest agents report, in a real data centre's mix. */

export interface SimGuestOs {
  readonly family: string;
  readonly distribution: string;
  readonly fullVersion: string;
}

interface OsProfile {
  readonly type: string;
  readonly weight: number;
  readonly guests: readonly SimGuestOs[];
}

const linux = (distribution: string, ...versions: string[]) =>
  versions.map((fullVersion) => ({ family: 'Linux', distribution, fullVersion }));
const windows = (...versions: string[]) => versions.map((fullVersion) => ({ family: 'Windows', distribution: '', fullVersion }));

/** osinfo names as the engine knows them, with the guest reports they come with. */
export const OS_PROFILES: readonly OsProfile[] = [
  { type: 'rhel_8x64', weight: 24, guests: linux('Red Hat Enterprise Linux', '8.6', '8.8', '8.10') },
  { type: 'rhel_9x64', weight: 20, guests: linux('Red Hat Enterprise Linux', '9.2', '9.4') },
  { type: 'rhel_7x64', weight: 8, guests: linux('Red Hat Enterprise Linux Server', '7.9') },
  { type: 'windows_2019x64', weight: 12, guests: windows('10.0.17763') },
  { type: 'windows_2022', weight: 10, guests: windows('10.0.20348') },
  { type: 'ubuntu_22_04', weight: 8, guests: linux('Ubuntu', '22.04') },
  { type: 'ubuntu_18_04', weight: 3, guests: linux('Ubuntu', '18.04') },
  { type: 'other_linux', weight: 8, guests: linux('Debian GNU/Linux', '11', '12') },
  { type: 'other', weight: 7, guests: [] },
];
