#include "testdrv/test_samples.hpp"

namespace vireo::testdrv::test_samples {

// libvirt's test driver ships a domain named "test" with this uuid; the
// other values are a sample of the same shape.
const std::string_view kTestDomainXml = R"(<domain type='qemu'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
  </devices>
</domain>
)";

// 1 NUMA cell, 2 sockets x 2 cores x 2 threads = 8 CPUs, 3 GiB.
const std::string_view kCapabilitiesXml = R"(<capabilities>

  <host>
    <uuid>f6b4ff4f-cd92-4b5a-a2a1-6fd0ab1c7b61</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>qemu64</model>
      <vendor>Intel</vendor>
      <topology sockets='2' dies='1' cores='2' threads='2'/>
    </cpu>
    <power_management/>
    <iommu support='no'/>
    <migration_features>
      <live/>
    </migration_features>
    <topology>
      <cells num='1'>
        <cell id='0'>
          <memory unit='KiB'>3145728</memory>
          <cpus num='8'>
            <cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0-1'/>
            <cpu id='1' socket_id='0' die_id='0' core_id='0' siblings='0-1'/>
            <cpu id='2' socket_id='0' die_id='0' core_id='1' siblings='2-3'/>
            <cpu id='3' socket_id='0' die_id='0' core_id='1' siblings='2-3'/>
            <cpu id='4' socket_id='1' die_id='0' core_id='0' siblings='4-5'/>
            <cpu id='5' socket_id='1' die_id='0' core_id='0' siblings='4-5'/>
            <cpu id='6' socket_id='1' die_id='0' core_id='1' siblings='6-7'/>
            <cpu id='7' socket_id='1' die_id='0' core_id='1' siblings='6-7'/>
          </cpus>
        </cell>
      </cells>
    </topology>
    <secmodel>
      <model>none</model>
      <doi>0</doi>
    </secmodel>
  </host>

  <guest>
    <os_type>hvm</os_type>
    <arch name='i686'>
      <wordsize>32</wordsize>
      <emulator>/usr/bin/test-hv</emulator>
      <domain type='qemu'/>
    </arch>
    <features>
      <pae/>
      <nonpae/>
    </features>
  </guest>

  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <emulator>/usr/bin/test-hv</emulator>
      <domain type='qemu'/>
    </arch>
  </guest>

</capabilities>
)";

}  // namespace vireo::testdrv::test_samples
