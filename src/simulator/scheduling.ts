/**
 * The simulated engine's scheduling set-up, shaped as the API model defines
 * it (types SchedulingPolicyUnit, SchedulingPolicy, Weight; ids as a real
 * engine's): the built-in policies and a few internal units, the external
 * unit ksm_same_os_score as the engine lists it once discovered, and a policy
 * "ksm_same_os" weighing it at factor 2, set on the first cluster. Tests
 * change it directly to play each state.
 */
export interface SimPolicyUnit {
  readonly id: string;
  readonly name: string;
  readonly type: 'filter' | 'weight' | 'load_balancing';
  readonly internal: boolean;
  enabled: boolean;
  readonly description: string;
}

export interface SimPolicy {
  readonly id: string;
  readonly name: string;
  readonly locked: boolean;
  readonly defaultPolicy: boolean;
  /** The policy's weight modules: unit and factor. */
  weights: { unitId: string; factor: number }[];
}

export interface SimScheduling {
  units: SimPolicyUnit[];
  readonly policies: Map<string, SimPolicy>;
}

export const KSM_UNIT_ID = '6f0e5c2a-8b1d-4e7a-9c3f-2d5b7a1e0c91';
export const NONE_POLICY_ID = 'b4ed2332-a7ac-4d5f-9596-99a439cb2812';
export const KSM_POLICY_ID = '0c7f3a52-5d8e-4b21-a9f6-3e1d2c4b5a60';
const EVEN_DISTRIBUTION_UNIT = '7db4ab05-81ab-42e8-868a-aee2df483edb';
const HA_UNIT = '7f262d70-6cac-11e3-981f-0800200c9a66';

export function defaultScheduling(): SimScheduling {
  const units: SimPolicyUnit[] = [
    {
      id: 'c9ddbb34-0e1d-4061-a8d7-b0893fa80932',
      name: 'Memory',
      type: 'filter',
      internal: true,
      enabled: true,
      description: 'Filters out hosts that have insufficient memory to run the VM',
    },
    {
      id: EVEN_DISTRIBUTION_UNIT,
      name: 'OptimalForEvenDistribution',
      type: 'weight',
      internal: true,
      enabled: true,
      description:
        'Gives hosts with lower CPU usage, a lower weight (means that hosts with lower CPU usage are more likely to be selected)',
    },
    { id: HA_UNIT, name: 'HA', type: 'weight', internal: true, enabled: true, description: 'Weights hosts according to their HA score' },
    {
      id: 'd58c8e32-44e1-418f-9222-52cd887bf9e0',
      name: 'OptimalForEvenDistribution',
      type: 'load_balancing',
      internal: true,
      enabled: true,
      description: 'Load balancing VMs in cluster according to hosts CPU load',
    },
    {
      id: KSM_UNIT_ID,
      name: 'ksm_same_os_score',
      type: 'weight',
      internal: false,
      enabled: true,
      description: 'ksm-scorer: prefers hosts that already run VMs of the same operating system',
    },
  ];
  const policies = new Map<string, SimPolicy>([
    [
      NONE_POLICY_ID,
      {
        id: NONE_POLICY_ID,
        name: 'none',
        locked: true,
        defaultPolicy: true,
        weights: [
          { unitId: EVEN_DISTRIBUTION_UNIT, factor: 1 },
          { unitId: HA_UNIT, factor: 1 },
        ],
      },
    ],
    [
      '20d25257-b4bd-4589-92a6-c4c5c5d3fd1a',
      {
        id: '20d25257-b4bd-4589-92a6-c4c5c5d3fd1a',
        name: 'evenly_distributed',
        locked: true,
        defaultPolicy: false,
        weights: [{ unitId: EVEN_DISTRIBUTION_UNIT, factor: 1 }],
      },
    ],
    [
      KSM_POLICY_ID,
      {
        id: KSM_POLICY_ID,
        name: 'ksm_same_os',
        locked: false,
        defaultPolicy: false,
        weights: [
          { unitId: HA_UNIT, factor: 1 },
          { unitId: KSM_UNIT_ID, factor: 2 },
        ],
      },
    ],
  ]);
  return { units, policies };
}
