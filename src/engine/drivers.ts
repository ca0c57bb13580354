/**
 * The driver registry: the one place that names the instance drivers this build of hull has. Each driver
 * module exports its own factory, which carries its kind; the engine looks drivers up by the kind stored
 * in an instance's record and never names a kind itself.
 */
import type { DriverFactory } from '../common/instance.js';
import { containerDriverFactory } from '../container/driver.js';
import { vmDriverFactory } from '../vm/driver.js';

/** Every driver of this build, the default kind (what `hull run` makes without --isolation) first. */
export const DRIVER_FACTORIES: readonly DriverFactory[] = [containerDriverFactory, vmDriverFactory];
