/** A bootable toy disk for VM tests that boot a full OS disk (hull vm create --disk) without downloading one. */
/**
 * A 1 MiB disk whose boot sector (16-bit x86, hand-assembled) prints a line on COM1, echoes what arrives on
 * COM1, and powers the machine off (ACPI PM1a_CNT, SLP_EN with S5) when it reads "q". Enough of an OS to
 * check BIOS boot, the serial console both ways and the exit on power-off, without downloading one.
 */
export function toyBootDisk(): Buffer {
  const code = Buffer.from(
    'FA31C08ED8BE347CBAF803' + // cli; ds=0; si=msg; dx=COM1
      'AC08C07403EEEBF8' + // print loop
      'BAFD03ECA80174F8BAF803EC3C717403EEEBED' + // echo loop until 'q'
      'BA0406B80020EFBA04B0EFF4EBFD', // PM1a_CNT at 0x604 (q35) and 0xb004 (pc): S5; hlt
    'hex',
  );
  const sector = Buffer.alloc(512);
  Buffer.concat([code, Buffer.from('hull disk vm booted\r\n\0')]).copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return Buffer.concat([sector, Buffer.alloc(1024 * 1024 - 512)]);
}
